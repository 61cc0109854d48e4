package settings

import (
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestREADMEDocumentsEveryFlag keeps the README's flag table true: a flag
// added to the code and not to the README fails here.
func TestREADMEDocumentsEveryFlag(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	require.NoError(t, err)
	n := 0
	for _, d := range (&Settings{}).declare() {
		if d.name == "" {
			continue
		}
		n++
		assert.Contains(t, string(readme), "`--"+d.name, "README.md does not document --%s", d.name)
	}
	require.Greater(t, n, 30)
}
