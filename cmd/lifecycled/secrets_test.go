package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// The secrets the tests below give lifecycled: none may be printed.
var testSecrets = []string{"S3cA", "S3cB", "S3cC", "S3cD", "S3cE", "S3cF", "S3cG", "S3cH", "p w@"}

func assertNoSecret(t *testing.T, out string) {
	t.Helper()
	for _, s := range testSecrets {
		assert.NotContains(t, out, s)
	}
}

// secretArgs are run flags and a command whose URLs hold secrets: the
// password of a hook's, a target's and an argument's URL, and query
// values named like secrets.
var secretArgs = []string{
	"--post-start-http", "http://u:S3cA@app:8080/started?token=S3cB",
	"--pre-stop-http", "http://app:8080/stop?a=1&X-Amz-Signature=S3cC",
	"--wait", "http://u:S3cD@db:5432/?api_key=S3cE",
	"--ready", "exec:curl -f http://u:S3cF@app/ready",
	"--", "app", "--upstream=https://u:S3cG@up/", "https://up/?sig=S3cH&x=1",
}

// TestExplainMasksSecrets: explain printed hooks' URLs and the command as
// given, passwords and tokens included.
func TestExplainMasksSecrets(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := explainMain(secretArgs, &stdout, &stderr)
	assert.Equal(t, 0, code, stderr.String())
	out := stdout.String()
	assertNoSecret(t, out)
	for _, want := range []string{"httpGet http://u:xxxxx@app:8080/started?token=xxxxx", "X-Amz-Signature=xxxxx",
		"http://u:xxxxx@db:5432/?api_key=xxxxx", "http://u:xxxxx@app/ready", "--upstream=https://u:xxxxx@up/", "sig=xxxxx&x=1"} {
		assert.Contains(t, out, want)
	}
}

// TestExplainFileMasksSecrets: explain -f, the same for a manifest's
// container, its httpGet preStop and its probes.
func TestExplainFileMasksSecrets(t *testing.T) {
	manifest := `apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  containers:
  - name: app
    image: app
    command: ["/lifecycled", "` + strings.Join(secretArgs, `", "`) + `"]
    lifecycle:
      preStop:
        httpGet: {port: 8080, path: "/quit?password=S3cA"}
    readinessProbe:
      exec: {command: ["/lifecycled", "probe", "http://u:S3cB@127.0.0.1:8080/?token=S3cC"]}
`
	var stdout, stderr bytes.Buffer
	explainFileMain([]string{"-f", "-"}, strings.NewReader(manifest), &stdout, &stderr)
	assert.Contains(t, stdout.String(), "=== ", "the container was explained:\n%s%s", stdout.String(), stderr.String())
	assertNoSecret(t, stdout.String()+stderr.String())
}

// TestUsageErrorMasksSecrets: a bad target or hook URL is named in the
// usage error with its secrets masked, even one url.Parse refuses.
func TestUsageErrorMasksSecrets(t *testing.T) {
	for _, args := range [][]string{
		{"--wait", "http://u:p w@h/", "--", "x"},
		{"--wait", "tcp://u:S3cA@db:5432", "--", "x"},
		{"--ready", "http://h:99999/?token=S3cB", "--", "x"},
		{"--post-start-http", "ftp://u:S3cC@h/?key=S3cD", "--", "x"},
		{"--on-exit-post", "gopher://u:S3cE@h/", "--", "x"},
		{"--wait", "http://u:S3cF%zz@h/", "--", "x"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			_, code, ok := loadRunConfig(args, nil, &stdout, &stderr)
			assert.False(t, ok)
			assert.Equal(t, exitUsage, code)
			assert.Contains(t, stderr.String(), "xxxxx")
			assertNoSecret(t, stderr.String())
		})
	}
}
