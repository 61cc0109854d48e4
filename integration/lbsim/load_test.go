package lbsim

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLoadCounts(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/bad" {
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	defer srv.Close()
	free, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closedURL := "http://" + free.Addr().String() + "/"
	require.NoError(t, free.Close())

	const rate, duration, workers = 200, 300 * time.Millisecond, 4
	// Each worker sends at most one request per interval, plus the first.
	most := int64(workers * (duration.Seconds()*rate/workers + 1))
	for _, tc := range []struct {
		name, url string
		failKind  string // "" if every request succeeds
	}{
		{"ok", srv.URL + "/", ""},
		{"status", srv.URL + "/bad", FailStatus},
		{"refused", closedURL, FailRefused},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Load{URL: tc.url, KeepAliveWorkers: 2, NewConnWorkers: 2, Rate: rate, Duration: duration}.Run(context.Background())
			require.NoError(t, err)
			total := r.OK + r.Failed
			assert.LessOrEqual(t, total, most, "the rate bounds the count")
			assert.Positive(t, total, "the load ran") // how much depends on how busy the machine is
			if tc.failKind == "" {
				assert.Zero(t, r.Failed, "%s %q", r, r.Samples)
				return
			}
			assert.Zero(t, r.OK)
			assert.Equal(t, map[string]int64{tc.failKind: r.Failed}, r.ByKind, "%q", r.Samples)
			assert.Len(t, r.FailTimes, int(r.Failed))
		})
	}
}

// TestLoadStopFinishesInFlight: stopping the load lets requests in flight
// finish; none counts as failed.
func TestLoadStopFinishesInFlight(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		time.Sleep(300 * time.Millisecond)
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	r, err := Load{URL: srv.URL, KeepAliveWorkers: 1, NewConnWorkers: 1, Rate: 100, Duration: time.Minute}.Run(ctx)
	require.NoError(t, err)
	assert.Equal(t, int64(2), r.OK, "one request per worker, finished after the stop")
	assert.Zero(t, r.Failed)
}

func TestLoadRefusesBadSettings(t *testing.T) {
	for _, l := range []Load{
		{URL: "http://192.0.2.1/", NewConnWorkers: 1, Rate: 1, Duration: time.Second},
		{URL: "http://localhost/", NewConnWorkers: 1, Rate: 1, Duration: time.Second},
		{URL: "http://127.0.0.1/", Rate: 1, Duration: time.Second},
		{URL: "http://127.0.0.1/", NewConnWorkers: 1, Rate: MaxRate + 1, Duration: time.Second},
		{URL: "http://127.0.0.1/", NewConnWorkers: 1, Rate: 1, Duration: time.Hour},
	} {
		_, err := l.Run(context.Background())
		assert.Error(t, err, "%+v", l)
	}
}
