package probes

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/proto"
)

// newHealthServer starts a real gRPC server with the standard health service
// on 127.0.0.1, "" (the whole server) SERVING, as health.NewServer sets it.
func newHealthServer(t *testing.T) (string, *health.Server) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := grpc.NewServer()
	hs := health.NewServer()
	healthpb.RegisterHealthServer(srv, hs)
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(l)
	}()
	t.Cleanup(func() {
		srv.Stop()
		<-served
	})
	return l.Addr().String(), hs
}

func TestCheckGRPC(t *testing.T) {
	addr, hs := newHealthServer(t)
	hs.SetServingStatus("app.Up", healthpb.HealthCheckResponse_SERVING)
	hs.SetServingStatus("app.Down", healthpb.HealthCheckResponse_NOT_SERVING)
	hs.SetServingStatus("app.Unknown", healthpb.HealthCheckResponse_UNKNOWN)

	downAddr, downHS := newHealthServer(t)
	downHS.Shutdown() // every service, "" included, NOT_SERVING

	http1 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(http1.Close)

	tests := []struct {
		name    string
		target  string
		wantUp  bool
		wantErr string // a part of the error, when down
	}{
		{"server SERVING", "grpc://" + addr, true, ""},
		{"service SERVING", "grpc://" + addr + "/app.Up", true, ""},
		{"service NOT_SERVING", "grpc://" + addr + "/app.Down", false, "health status NOT_SERVING"},
		{"service UNKNOWN", "grpc://" + addr + "/app.Unknown", false, "health status UNKNOWN"},
		{"unknown service", "grpc://" + addr + "/app.Missing", false, "grpc status NOT_FOUND: unknown service"},
		{"server NOT_SERVING", "grpc://" + downAddr, false, "health status NOT_SERVING"},
		// How an HTTP/1 server fails an HTTP/2 client is up to net/http;
		// that it fails is what matters.
		{"an HTTP/1 server", "grpc://" + strings.TrimPrefix(http1.URL, "http://"), false, ""},
		{"nothing listening", "grpc://" + closedPort(t), false, "connection refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			err := checkTarget(t, tt.target)
			if tt.wantUp {
				assert.NoError(t, err)
			} else {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
			}
			assert.Less(t, time.Since(start), 3*time.Second)
		})
	}
}

func TestCheckGRPCNotGRPC(t *testing.T) {
	// An h2c server that is not gRPC: it speaks HTTP/2 but answers 404.
	var protocols http.Protocols
	protocols.SetUnencryptedHTTP2(true)
	srv := httptest.NewUnstartedServer(http.NotFoundHandler())
	srv.Config.Protocols = &protocols
	srv.Start()
	t.Cleanup(srv.Close)

	err := checkTarget(t, "grpc://"+strings.TrimPrefix(srv.URL, "http://"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "not a gRPC server")
}

func TestCheckGRPCHonoursDeadline(t *testing.T) {
	const deadline = 200 * time.Millisecond
	start := time.Now()
	err := Check(timeoutCtx(t, deadline), mustParse(t, "grpc://"+silentListener(t)), testOptions)
	elapsed := time.Since(start)
	require.Error(t, err)
	assert.GreaterOrEqual(t, elapsed, deadline)
	assert.Less(t, elapsed, 3*time.Second)
}

func TestHealthCheckRequestEncoding(t *testing.T) {
	for _, service := range []string{"", "app.Up", strings.Repeat("s", 300)} {
		want, err := proto.Marshal(&healthpb.HealthCheckRequest{Service: service})
		require.NoError(t, err)
		frame := healthCheckRequest(service)
		require.GreaterOrEqual(t, len(frame), 5)
		assert.Equal(t, byte(0), frame[0], "compressed flag")
		assert.Equal(t, []byte{0, 0, byte(len(want) >> 8), byte(len(want))}, frame[1:5], "length")
		assert.Equal(t, want, frame[5:], "message for service %q", service)
	}
}

func TestParseHealthCheckResponse(t *testing.T) {
	frame := func(msg []byte) []byte {
		return append([]byte{0, 0, 0, 0, byte(len(msg))}, msg...)
	}
	tests := []struct {
		name    string
		body    []byte
		want    uint64
		wantErr string
	}{
		{"SERVING", frame([]byte{0x08, 0x01}), 1, ""},
		{"NOT_SERVING", frame([]byte{0x08, 0x02}), 2, ""},
		{"empty message is UNKNOWN", frame(nil), 0, ""},
		{"unknown fields skipped", frame([]byte{0x12, 0x02, 'h', 'i', 0x08, 0x01, 0x1d, 1, 2, 3, 4, 0x21, 1, 2, 3, 4, 5, 6, 7, 8}), 1, ""},
		{"no message", nil, 0, "no message"},
		{"compressed", []byte{1, 0, 0, 0, 0}, 0, "compressed"},
		{"cut short", []byte{0, 0, 0, 0, 9, 0x08}, 0, "cut at"},
		{"truncated field", frame([]byte{0x12, 0x05, 'h'}), 0, "truncated field"},
		{"bad varint", frame([]byte{0x08, 0x80}), 0, "bad varint"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseHealthCheckResponse(tt.body)
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestGRPCTimeout(t *testing.T) {
	assert.Equal(t, "1m", grpcTimeout(0))
	assert.Equal(t, "1m", grpcTimeout(time.Microsecond))
	assert.Equal(t, "1500m", grpcTimeout(1500*time.Millisecond))
	assert.Equal(t, "100000S", grpcTimeout(100000*time.Second))
}
