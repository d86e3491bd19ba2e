package cli

import (
	"strings"
	"testing"
	"time"
)

func TestEnv(t *testing.T) {
	t.Parallel()
	vars := map[string]string{"S": "set", "EMPTY": "", "D": "3s", "BADD": "soon", "N": "7", "BADN": "many"}
	e := NewEnv(func(k string) string { return vars[k] })
	if got := e.String("S", "def"); got != "set" {
		t.Errorf("String(S) = %q", got)
	}
	if got := e.String("EMPTY", "def"); got != "def" {
		t.Errorf("String(EMPTY) = %q, want the default", got)
	}
	if got := e.String("UNSET", "def"); got != "def" {
		t.Errorf("String(UNSET) = %q", got)
	}
	if got := e.Duration("D", time.Second); got != 3*time.Second {
		t.Errorf("Duration(D) = %v", got)
	}
	if got := e.Int("N", 1); got != 7 {
		t.Errorf("Int(N) = %d", got)
	}
	if e.Err() != nil {
		t.Fatalf("Err = %v before any bad value", e.Err())
	}
	if got := e.Duration("BADD", time.Second); got != time.Second {
		t.Errorf("Duration(BADD) = %v, want the default", got)
	}
	if got := e.Int("BADN", 1); got != 1 {
		t.Errorf("Int(BADN) = %d, want the default", got)
	}
	err := e.Err()
	if err == nil || !strings.Contains(err.Error(), "BADD") || !strings.Contains(err.Error(), "BADN") {
		t.Fatalf("Err = %v, want both bad values", err)
	}
}
