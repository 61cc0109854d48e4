package main

import (
	"flag"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestREADMEDocumentsEveryFlag keeps the README's flag table true: a flag
// added to the code and not to the README fails here.
func TestREADMEDocumentsEveryFlag(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	o := defaultRunOptions()
	n := 0
	newRunFlagSet(&o).VisitAll(func(f *flag.Flag) {
		n++
		assert.Contains(t, string(readme), "`--"+f.Name, "README.md does not document --%s", f.Name)
	})
	require.Greater(t, n, 30)
}
