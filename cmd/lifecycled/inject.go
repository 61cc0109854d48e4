package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/lifecycled/lifecycled/internal/redact"
	"github.com/lifecycled/lifecycled/internal/registry"
	"github.com/lifecycled/lifecycled/podspec/inject"
	"github.com/lifecycled/lifecycled/settings"
)

// injectMain is `lifecycled inject -f FILE [FLAGS]` and `lifecycled
// uninject -f FILE` (also `inject --uninject`): the manifest, with
// lifecycled put in or taken out, on stdout. Exit 0 with the manifest, 1
// with one line per problem and nothing on stdout, 2 for bad flags or a
// file that is not a manifest inject can edit.
func injectMain(args []string, stdin io.Reader, stdout, stderr io.Writer, uninject bool) int {
	cmd := "inject"
	if uninject {
		cmd = "uninject"
	}
	var file string
	var fixBudget, adaptive, resolve bool
	var registryConfig string
	o := inject.Options{Entrypoints: map[string][]string{}}
	fs := flag.NewFlagSet("lifecycled "+cmd, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&file, "f", "", "")
	fs.StringVar(&file, "filename", "", "")
	fs.BoolVar(&uninject, "uninject", uninject, "")
	fs.StringVar(&o.Image, "lifecycled-image", inject.DefaultImage, "")
	fs.Func("image", "", func(s string) error { o.Images = append(o.Images, s); return nil })
	fs.Func("container", "", func(s string) error { o.Containers = append(o.Containers, s); return nil })
	fs.Func("entrypoint", "", func(s string) error {
		name, cmdline, ok := strings.Cut(s, "=")
		var argv []string
		if !ok || name == "" || json.Unmarshal([]byte(cmdline), &argv) != nil || len(argv) == 0 {
			return fmt.Errorf("want CONTAINER='[\"/app\",\"--flag\"]' (a JSON array of strings), got %q", s)
		}
		o.Entrypoints[name] = argv
		return nil
	})
	duration := func(name string, into *time.Duration) {
		fs.Func(name, "", func(s string) error {
			d, err := settings.ParseDuration(s)
			if err != nil || d <= 0 {
				return fmt.Errorf("want a positive duration, e.g. 5s, got %q", s)
			}
			*into = d
			return nil
		})
	}
	duration("drain-delay", &o.DrainDelay)
	duration("drain-quiet", &o.DrainQuiet)
	duration("grace-period", &o.GracePeriod)
	fs.BoolVar(&adaptive, "adaptive", false, "")
	fs.BoolVar(&fixBudget, "fix-budget", false, "")
	fs.BoolVar(&resolve, "resolve", false, "")
	fs.StringVar(&registryConfig, "registry-config", "", "")
	fs.IntVar(&o.Port, "listen-port", inject.DefaultPort, "")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printInjectUsage(stdout)
			return exitOK
		}
		return usageError(stderr, "%s: %v", cmd, err)
	}
	if fs.NArg() > 0 {
		return usageError(stderr, "%s: unexpected %q (the manifest comes with -f FILE, or -f - for stdin)", cmd, fs.Arg(0))
	}
	if o.Port < 1 || o.Port > 65535 {
		return usageError(stderr, "%s: --listen-port %d: want 1-65535", cmd, o.Port)
	}
	o.Adaptive, o.FixBudget = adaptive, fixBudget
	if registryConfig != "" && !resolve {
		return usageError(stderr, "%s: --registry-config goes with --resolve", cmd)
	}
	if resolve {
		r := &registry.Resolver{DockerConfig: registryConfig}
		o.Resolve = func(ctx context.Context, _, image string) ([]string, []string, error) {
			img, err := r.Resolve(ctx, image)
			return img.Entrypoint, img.Cmd, err
		}
	}
	name, data, err := readManifest(file, stdin)
	if err != nil {
		return usageError(stderr, "%s: %v", cmd, err)
	}
	var out []byte
	if uninject {
		out, err = inject.Uninject(data)
	} else {
		// Bounded: --resolve's registry requests are the only waits.
		ctx, cancel := context.WithTimeout(context.Background(), injectTimeout)
		out, err = inject.Inject(ctx, data, o)
		cancel()
	}
	var problems inject.Problems
	var bad *inject.DecodeError
	switch {
	case errors.As(err, &bad):
		return usageError(stderr, "%s %s: %v", cmd, name, settings.YAMLError(firstYAMLError(bad.Err), data))
	case errors.As(err, &problems):
		for _, p := range problems {
			_, _ = io.WriteString(stderr, redact.Line("lifecycled: %s %s: %s", cmd, name, p))
		}
		return 1
	case err != nil:
		return usageError(stderr, "%s %s: %v", cmd, name, err)
	}
	if _, err := stdout.Write(out); err != nil {
		fmt.Fprintf(stderr, "lifecycled: %s: write: %v\n", cmd, err)
		return 1
	}
	return exitOK
}

// injectTimeout bounds an inject run, the registry requests of --resolve
// included.
const injectTimeout = 2 * time.Minute

func printInjectUsage(w io.Writer) {
	fmt.Fprintf(w, `Usage: lifecycled inject -f FILE [FLAGS]     (FILE - = stdin; kubectl lifecycled inject ... as a kubectl plugin)
       lifecycled uninject -f FILE          (or inject --uninject)

Prints the manifest with each chosen app container running under lifecycled, no image
rebuilt: an emptyDir and an init container that copies the binary there (lifecycled
install), the command [%s/lifecycled, FLAGS..., --, original command], the readiness
and liveness probes moved into --ready/--live behind /readyz and /livez, a preStop
sleep turned into the drain. Fields it does not change keep their bytes; what it
changed is kept in the pod template's annotation %s, which uninject
reads to give the original back byte for byte. An injected workload is left alone.
Exit 0 with the manifest on stdout, 1 with one line per problem (nothing written),
2 for bad flags or a file it cannot read or edit.

Flags:
  --container NAME           wrap only this container (repeatable; default: every regular container)
  --entrypoint NAME=JSON     the command of a container without one in the manifest: the image's
                             ENTRYPOINT, then its CMD if the manifest has no args, e.g. web='["/app","serve"]'
  --image IMAGE              an image whose ENTRYPOINT is lifecycled: its containers are left as they are
                             (repeatable, as for explain -f)
  --lifecycled-image IMAGE   the init container's image (default %s)
  --listen-port PORT         first port for --listen, kept off the pod's ports (default %d)
  --drain-delay DURATION     drain of a container with a readinessProbe and no preStop sleep (default %s)
  --adaptive                 adaptive drain: --drain-quiet, the delay as its ceiling
  --drain-quiet DURATION     with --adaptive (default %s)
  --grace-period DURATION    lifecycled's --grace-period (default: terminationGracePeriodSeconds - drain - 1s)
  --fix-budget               raise terminationGracePeriodSeconds to what the stop sequence needs
  --resolve                  read the ENTRYPOINT and CMD of a container without a command from its
                             image's registry (OCI distribution API; https, plain http for localhost)
  --registry-config FILE     credentials for --resolve (docker's config.json or podman's auth.json;
                             default: $REGISTRY_AUTH_FILE, podman's, then docker's usual places)
  --uninject                 undo what inject did
`, inject.Dir, inject.Annotation, inject.DefaultImage, inject.DefaultPort, inject.DefaultDrainDelay, inject.DefaultDrainQuiet)
}
