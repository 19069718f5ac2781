package main

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
)

// lineLogger receives one line of a command's output; stream is "stdout" or "stderr".
type lineLogger func(stream, line string)

// maxLine bounds a log line: longer output without a newline is logged in pieces.
const maxLine = 64 * 1024

// lineWriter splits what is written to it into lines and hands each to emit.
type lineWriter struct {
	mu   sync.Mutex
	buf  []byte
	emit func(string)
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			if len(w.buf) >= maxLine {
				w.emit(string(w.buf[:maxLine]))
				w.buf = append(w.buf[:0], w.buf[maxLine:]...)
				continue
			}
			return len(p), nil
		}
		w.emit(strings.TrimSuffix(string(w.buf[:i]), "\r"))
		w.buf = append(w.buf[:0], w.buf[i+1:]...)
	}
}

func (w *lineWriter) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 {
		w.emit(strings.TrimSuffix(string(w.buf), "\r"))
		w.buf = nil
	}
}

// lockedBuffer is a bytes.Buffer safe for concurrent writers.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// capture collects a command's stdout and stderr, logs the lines the `logging` input allows, and
// keeps an interleaved transcript for error messages that never holds stdout unless stdout is
// logged.
type capture struct {
	stdout, stderr lockedBuffer
	transcript     lockedBuffer
	logOut, logErr *lineWriter
	showStdout     bool
}

func newCapture(a *commandArgs, log lineLogger) *capture {
	c := &capture{showStdout: a.logStdout()}
	if log != nil && a.logStdout() {
		c.logOut = &lineWriter{emit: func(l string) { log("stdout", l) }}
	}
	if log != nil && a.logStderr() {
		c.logErr = &lineWriter{emit: func(l string) { log("stderr", l) }}
	}
	return c
}

type fanout []interface{ Write([]byte) (int, error) }

func (f fanout) Write(p []byte) (int, error) {
	for _, w := range f {
		if _, err := w.Write(p); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

func (c *capture) stdoutWriter() fanout {
	f := fanout{&c.stdout}
	if c.showStdout {
		f = append(f, &c.transcript)
	}
	if c.logOut != nil {
		f = append(f, c.logOut)
	}
	return f
}

func (c *capture) stderrWriter() fanout {
	f := fanout{&c.stderr, &c.transcript}
	if c.logErr != nil {
		f = append(f, c.logErr)
	}
	return f
}

func (c *capture) flush() {
	if c.logOut != nil {
		c.logOut.flush()
	}
	if c.logErr != nil {
		c.logErr.flush()
	}
}

// results returns stdout and stderr without their final newline, like pulumi-command.
func (c *capture) results() (string, string) {
	return strings.TrimSuffix(c.stdout.String(), "\n"), strings.TrimSuffix(c.stderr.String(), "\n")
}

// Bounds of the output tail quoted in an error message.
const (
	tailLines = 40
	tailBytes = 8 * 1024
)

func tail(s string) string {
	s = strings.TrimRight(s, "\n")
	cut := false
	if len(s) > tailBytes {
		s, cut = s[len(s)-tailBytes:], true
		if i := strings.IndexByte(s, '\n'); i >= 0 {
			s = s[i+1:]
		}
	}
	if lines := strings.Split(s, "\n"); len(lines) > tailLines {
		s, cut = strings.Join(lines[len(lines)-tailLines:], "\n"), true
	}
	if cut {
		s = "[... earlier output cut ...]\n" + s
	}
	return s
}

// failure builds the error of a failed command run, in pulumi-command's form
// `<error>: running "<command>":\n<output>`, except that the command line is left out when it is
// a secret, and stdout is left out unless the `logging` input logs it (stderr is always quoted).
func (c *capture) failure(err error, a *commandArgs, which, command string) error {
	shown := fmt.Sprintf("%q", command)
	if a.secretCommand[which] {
		shown = "<secret " + which + " command>"
	}
	var what string
	if c.showStdout {
		what = "stdout and stderr"
	} else {
		what = "stderr only; stdout is not shown as logging is " + fmt.Sprintf("%q", a.Logging)
	}
	out := tail(c.transcript.String())
	if out == "" {
		out = "(no output)"
	}
	return fmt.Errorf("%w: running %s (%s):\n%s", err, shown, what, out)
}
