package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

const (
	envPrevStdout = "PULUMI_COMMAND_STDOUT"
	envPrevStderr = "PULUMI_COMMAND_STDERR"
)

// waitDelay: once a command has exited, how long to wait for processes it left running in the
// background that still hold its stdout/stderr open (upstream would wait forever).
var waitDelay = 5 * time.Second

// runLocal runs command (the input named which) on this machine through the interpreter, with
// prevStdout/prevStderr of the previous run in the environment when addPreviousOutputInEnv.
func runLocal(ctx context.Context, a *commandArgs, which, command, prevStdout, prevStderr string,
	log lineLogger,
) (string, string, error) {
	args := a.Interpreter
	if len(args) == 0 {
		args = []string{"/bin/sh", "-c"}
	}
	args = append(append([]string{}, args...), command)

	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	if a.Dir != nil {
		cmd.Dir = *a.Dir
	}
	cmd.Env = os.Environ()
	for k, v := range a.Environment {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	if a.AddPreviousOutputInEnv {
		if prevStdout != "" {
			cmd.Env = append(cmd.Env, envPrevStdout+"="+prevStdout)
		}
		if prevStderr != "" {
			cmd.Env = append(cmd.Env, envPrevStderr+"="+prevStderr)
		}
	}
	if a.Stdin != nil && *a.Stdin != "" {
		cmd.Stdin = strings.NewReader(*a.Stdin)
	}
	c := newCapture(a, log)
	cmd.Stdout = c.stdoutWriter()
	cmd.Stderr = c.stderrWriter()
	// Own process group: Cancel (and a cancelled context) kills the whole tree, not just the shell.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = waitDelay

	err := cmd.Run()
	c.flush()
	if errors.Is(err, exec.ErrWaitDelay) {
		// The command succeeded but left a background process holding its output open.
		err = nil
	}
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("cancelled (%v)", err)
		}
		return "", "", c.failure(err, a, which, command)
	}
	stdout, stderr := c.results()
	return stdout, stderr, nil
}
