// Package logtest is the test kit for reading what a component logs or
// prints while it is still running: a buffer that its goroutines may write
// to while the test reads it.
package logtest

import (
	"bytes"
	"sync"
)

// Buffer collects writes from any goroutine and hands the test what was
// written so far; a bytes.Buffer alone would race with the writers.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p; it is an io.Writer for loggers and child processes.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String is everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
