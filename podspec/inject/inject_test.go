package inject

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lifecycled/lifecycled/podspec"
)

var update = flag.Bool("update", false, "rewrite testdata/golden from what inject prints")

// corpusOptions are the options of the corpus manifests that need some.
var corpusOptions = map[string]Options{
	"no-command-entrypoint": {Entrypoints: map[string][]string{"nginx": {"/docker-entrypoint.sh", "nginx", "-g", "daemon off;"}}},
	"no-command-args":       {Entrypoints: map[string][]string{"redis": {"docker-entrypoint.sh"}}},
	"choose-container":      {Containers: []string{"app"}},
	"adaptive":              {Adaptive: true},
	"fix-budget":            {FixBudget: true},
}

// exampleImages are the examples' images whose ENTRYPOINT is lifecycled.
var exampleImages = []string{"localhost/lifecycled-demo", "localhost/lifecycled"}

// TestGolden: inject on every example and on the corpus prints what
// testdata/golden holds (-update rewrites it); each result passes explain
// -f's checks, uninject gives the input back byte for byte, and a second
// inject changes nothing. A manifest inject refuses has its error there.
func TestGolden(t *testing.T) {
	type tc struct {
		name, in, golden string
		o                Options
	}
	var cases []tc
	corpus, err := filepath.Glob("testdata/corpus/*.yaml")
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(corpus), 20)
	for _, f := range corpus {
		name := strings.TrimSuffix(filepath.Base(f), ".yaml")
		cases = append(cases, tc{name, f, "", corpusOptions[name]})
	}
	examples, err := filepath.Glob("../../examples/*.yaml")
	require.NoError(t, err)
	require.NotEmpty(t, examples)
	for _, f := range examples {
		cases = append(cases, tc{"example-" + strings.TrimSuffix(filepath.Base(f), ".yaml"), f, "", Options{Images: exampleImages}})
	}
	// The README's before and after.
	cases = append(cases, tc{"example-inject", "../../examples/inject/web.yaml", "../../examples/inject/web.injected.yaml", Options{Image: "localhost/lifecycled:dev"}})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in, err := os.ReadFile(c.in)
			require.NoError(t, err)
			out, err := Inject(context.Background(), in, c.o)
			got := out
			if err != nil {
				got = []byte("error: " + err.Error() + "\n")
			}
			golden := c.golden
			if golden == "" {
				golden = filepath.Join("testdata/golden", c.name+".yaml")
			}
			if *update {
				require.NoError(t, os.WriteFile(golden, got, 0o644))
			}
			want, err2 := os.ReadFile(golden)
			require.NoError(t, err2, "run go test -update to write it")
			assert.Equal(t, string(want), string(got))
			if err != nil {
				assert.Nil(t, out, "nothing written on an error")
				return
			}
			ws, err := podspec.Decode(out)
			require.NoError(t, err)
			for i := range ws {
				assert.Empty(t, podspec.Check(&ws[i], c.o.Images).Problems, "explain -f finds no problem in %s", ws[i].String())
			}
			back, err := Uninject(out)
			require.NoError(t, err)
			assert.Equal(t, string(in), string(back), "uninject(inject(x)) == x")
			again, err := Inject(context.Background(), out, c.o)
			require.NoError(t, err)
			assert.Equal(t, string(out), string(again), "inject is idempotent")
		})
	}
}

// TestProblemsAreProblems: the refusals that are problems of the
// manifest (exit 1) are Problems, those of a file inject cannot edit
// (exit 2) are not.
func TestProblemsAreProblems(t *testing.T) {
	for name, want := range map[string]bool{
		"err-no-command": true, "err-prestop-http": true, "err-budget": true, "err-http-headers": true, "err-json": false,
	} {
		in, err := os.ReadFile(filepath.Join("testdata/corpus", name+".yaml"))
		require.NoError(t, err)
		_, err = Inject(context.Background(), in, Options{})
		require.Error(t, err, name)
		var ps Problems
		assert.Equal(t, want, errors.As(err, &ps), "%s: %v", name, err)
	}
}

// TestResolve: a container without a command takes the image's
// ENTRYPOINT and CMD from Resolve (CMD only when the manifest has no
// args), with $ escaped from the kubelet's expansion; Resolve's error
// names the image.
func TestResolve(t *testing.T) {
	in := []byte("apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - name: a\n    image: img:1\n  - name: b\n    image: img:2\n    args: [--x]\n")
	var asked []string
	o := Options{Resolve: func(_ context.Context, container, image string) ([]string, []string, error) {
		asked = append(asked, container+"="+image)
		return []string{"/entry", "$(HOME)"}, []string{"serve"}, nil
	}}
	out, err := Inject(context.Background(), in, o)
	require.NoError(t, err)
	assert.Equal(t, []string{"a=img:1", "b=img:2"}, asked)
	ws, err := podspec.Decode(out)
	require.NoError(t, err)
	a, b := ws[0].Spec.Containers[0], ws[0].Spec.Containers[1]
	assert.Equal(t, []string{"--", "/entry", "$$(HOME)", "serve"}, a.Command[len(a.Command)-4:])
	assert.Equal(t, []string{"--", "/entry", "$$(HOME)"}, b.Command[len(b.Command)-3:])
	assert.Equal(t, []string{"--x"}, b.Args)

	o.Resolve = func(context.Context, string, string) ([]string, []string, error) {
		return nil, nil, errors.New("manifest unknown")
	}
	_, err = Inject(context.Background(), in, o)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "image img:1: manifest unknown")
}

// FuzzInject: inject never panics, and whenever it succeeds, uninject
// gives the input back byte for byte and a second inject changes nothing.
func FuzzInject(f *testing.F) {
	corpus, _ := filepath.Glob("testdata/corpus/*.yaml")
	for _, c := range corpus {
		data, err := os.ReadFile(c)
		if err == nil {
			f.Add(data)
		}
	}
	o := Options{Entrypoints: map[string][]string{}, FixBudget: true}
	f.Fuzz(func(t *testing.T, in []byte) {
		out, err := Inject(context.Background(), in, o)
		if err != nil {
			return
		}
		back, err := Uninject(out)
		if err != nil {
			t.Fatalf("uninject of inject's output: %v\n%s", err, out)
		}
		if !bytes.Equal(back, in) {
			t.Fatalf("uninject(inject(x)) != x\nin:\n%s\nback:\n%s", in, back)
		}
		again, err := Inject(context.Background(), out, o)
		if err != nil || !bytes.Equal(again, out) {
			t.Fatalf("second inject: %v\n%s", err, again)
		}
	})
}

// TestCompactSequences: sequences move to their key's indentation with
// what is under them; a block scalar's lines that look like a key and a
// sequence stay as they are.
func TestCompactSequences(t *testing.T) {
	in := "command:\n  - sh\n  - -c\n  - |\n    x:\n      - not a sequence\nm:\n  k:\n    - a\n    - b: 1\n      c:\n        - d\n"
	want := "command:\n- sh\n- -c\n- |\n  x:\n    - not a sequence\nm:\n  k:\n  - a\n  - b: 1\n    c:\n    - d\n"
	assert.Equal(t, want, compactSequences(in))
}
