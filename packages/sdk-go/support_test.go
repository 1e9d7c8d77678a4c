package arqon

import (
	"path/filepath"
	"runtime"
	"testing"
)

// repoRoot is the repository's root (this file is packages/sdk-go/support_test.go).
func repoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("no caller information")
	}
	return filepath.Join(filepath.Dir(file), "..", "..")
}
