// Package vectors locates the public test vectors recorded on real hardware
// (see DESIGN.md, "Conventions"). Tests call Dir or Path, which skip the
// test with a clear message when the vectors are absent.
package vectors

import (
	"os"
	"path/filepath"
	"testing"
)

// Env is the environment variable that names the vectors folder.
const Env = "SWORN_VECTORS"

// Root returns the vectors folder: $SWORN_VECTORS, or ../shared/vectors
// next to the module root. It returns "" when neither exists.
func Root() string {
	if d := os.Getenv(Env); d != "" {
		if isDir(d) {
			return d
		}
		return ""
	}
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			d := filepath.Join(dir, "..", "shared", "vectors")
			if isDir(d) {
				return d
			}
			return ""
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

// Path returns the path of a file or folder inside the vectors, skipping
// the test when the vectors or that file are absent.
func Path(t testing.TB, elem ...string) string {
	t.Helper()
	root := Root()
	if root == "" {
		t.Skipf("test vectors not found: set %s or place them at ../shared/vectors", Env)
	}
	p := filepath.Join(append([]string{root}, elem...)...)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("test vector %s not found: %v", filepath.Join(elem...), err)
	}
	return p
}

// Read returns the contents of a vector file, skipping the test when it is absent.
func Read(t testing.TB, elem ...string) []byte {
	t.Helper()
	data, err := os.ReadFile(Path(t, elem...))
	if err != nil {
		t.Fatal(err)
	}
	return data
}
