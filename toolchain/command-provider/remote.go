package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/common/util/retry"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// hostKeyMismatch is the error of a host that presents another key than the pinned hostKey. It
// ends dialing at once: retrying cannot help, and the message must not drown in retries.
type hostKeyMismatch struct {
	address     string
	got, pinned ssh.PublicKey
}

func (e *hostKeyMismatch) Error() string {
	return fmt.Sprintf("host key mismatch: %s presented %s %s but connection.hostKey pins %s %s "+
		"(the machine was replaced or reinstalled, or something intercepts the connection)",
		e.address, e.got.Type(), ssh.FingerprintSHA256(e.got), e.pinned.Type(), ssh.FingerprintSHA256(e.pinned))
}

// clientConfig builds the SSH client configuration of c. Authentication methods are tried in
// pulumi-command's order: private key, password (and keyboard-interactive), SSH agent.
func (c *connection) clientConfig() (*ssh.ClientConfig, func(), error) {
	cfg := &ssh.ClientConfig{User: c.User, HostKeyCallback: ssh.InsecureIgnoreHostKey()}
	cleanup := func() {}
	if c.HostKey != nil && strings.TrimSpace(*c.HostKey) != "" {
		pinned, _, _, _, err := ssh.ParseAuthorizedKey([]byte(*c.HostKey))
		if err != nil {
			return nil, cleanup, fmt.Errorf("connection.hostKey: %w", err)
		}
		address := c.address()
		cfg.HostKeyCallback = func(_ string, _ net.Addr, got ssh.PublicKey) error {
			if bytes.Equal(got.Marshal(), pinned.Marshal()) {
				return nil
			}
			return &hostKeyMismatch{address: address, got: got, pinned: pinned}
		}
		cfg.HostKeyAlgorithms = hostKeyAlgorithms(pinned.Type())
	}
	if c.PrivateKey != nil {
		var signer ssh.Signer
		var err error
		if c.PrivateKeyPassword != nil {
			signer, err = ssh.ParsePrivateKeyWithPassphrase([]byte(*c.PrivateKey), []byte(*c.PrivateKeyPassword))
		} else {
			signer, err = ssh.ParsePrivateKey([]byte(*c.PrivateKey))
		}
		if err != nil {
			// Never quote the key.
			return nil, cleanup, fmt.Errorf("connection.privateKey: cannot parse the private key: %w", err)
		}
		cfg.Auth = append(cfg.Auth, ssh.PublicKeys(signer))
	}
	if c.Password != nil {
		pw := *c.Password
		cfg.Auth = append(cfg.Auth, ssh.Password(pw),
			ssh.KeyboardInteractive(func(_, _ string, questions []string, _ []bool) ([]string, error) {
				answers := make([]string, len(questions))
				for i := range answers {
					answers[i] = pw
				}
				return answers, nil
			}))
	}
	// The operator's agent ($SSH_AUTH_SOCK) only when nothing else is given: with a private key or
	// password, another identity must not log in by accident (upstream would also try the agent).
	sock, explicit := "", false
	if c.AgentSocketPath != nil && *c.AgentSocketPath != "" {
		sock, explicit = *c.AgentSocketPath, true
	} else if len(cfg.Auth) == 0 {
		sock = os.Getenv("SSH_AUTH_SOCK")
	}
	if sock != "" {
		conn, err := net.Dial("unix", sock)
		switch {
		case err == nil:
			cfg.Auth = append(cfg.Auth, ssh.PublicKeysCallback(agent.NewClient(conn).Signers))
			cleanup = func() { conn.Close() }
		case explicit:
			return nil, cleanup, fmt.Errorf("connection.agentSocketPath: %w", err)
		}
	}
	if len(cfg.Auth) == 0 {
		return nil, cleanup, errors.New("connection: no authentication method: set privateKey, password or " +
			"agentSocketPath (or SSH_AUTH_SOCK)")
	}
	return cfg, cleanup, nil
}

// hostKeyAlgorithms lists the algorithms to negotiate for a pinned host key of type t.
func hostKeyAlgorithms(t string) []string {
	if t == ssh.KeyAlgoRSA {
		return []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
	}
	return []string{t}
}

func (c *connection) address() string {
	return net.JoinHostPort(c.Host, strconv.Itoa(c.Port))
}

// handshake runs the SSH handshake over conn within the per-dial timeout.
func (c *connection) handshake(conn net.Conn, cfg *ssh.ClientConfig) (*ssh.Client, error) {
	if c.PerDialTimeout > 0 {
		_ = conn.SetDeadline(time.Now().Add(time.Duration(c.PerDialTimeout) * time.Second))
	}
	sc, chans, reqs, err := ssh.NewClientConn(conn, c.address(), cfg)
	if err != nil {
		conn.Close()
		return nil, err
	}
	_ = conn.SetDeadline(time.Time{})
	return ssh.NewClient(sc, chans, reqs), nil
}

// dialOnce makes one connection attempt (through the proxy when there is one).
func (c *connection) dialOnce(ctx context.Context, cfg, proxyCfg *ssh.ClientConfig) (*ssh.Client, func(), error) {
	timeout := time.Duration(c.PerDialTimeout) * time.Second
	dctx := ctx
	if timeout > 0 {
		var cancel context.CancelFunc
		dctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	if c.Proxy == nil {
		conn, err := (&net.Dialer{}).DialContext(dctx, "tcp", c.address())
		if err != nil {
			return nil, nil, err
		}
		client, err := c.handshake(conn, cfg)
		if err != nil {
			return nil, nil, err
		}
		return client, func() { client.Close() }, nil
	}
	p := c.Proxy
	pconn, err := (&net.Dialer{}).DialContext(dctx, "tcp", p.address())
	if err != nil {
		return nil, nil, fmt.Errorf("proxy %s: %w", p.address(), err)
	}
	proxyClient, err := p.handshake(pconn, proxyCfg)
	if err != nil {
		return nil, nil, fmt.Errorf("proxy %s: %w", p.address(), err)
	}
	conn, err := proxyClient.DialContext(dctx, "tcp", c.address())
	if err != nil {
		proxyClient.Close()
		return nil, nil, fmt.Errorf("through proxy %s: %w", p.address(), err)
	}
	client, err := c.handshake(conn, cfg)
	if err != nil {
		proxyClient.Close()
		return nil, nil, err
	}
	return client, func() { client.Close(); proxyClient.Close() }, nil
}

// dial connects to the host, retrying failed attempts (with the sdk's retry backoff: 0.1 s,
// x1.5, at most 5 s between attempts) until dialErrorLimit attempts have failed (-1: no limit),
// like pulumi-command.
func (c *connection) dial(ctx context.Context) (*ssh.Client, func(), error) {
	cfg, cleanupAuth, err := c.clientConfig()
	if err != nil {
		return nil, nil, err
	}
	var proxyCfg *ssh.ClientConfig
	cleanupProxyAuth := func() {}
	if c.Proxy != nil {
		if proxyCfg, cleanupProxyAuth, err = c.Proxy.clientConfig(); err != nil {
			cleanupAuth()
			return nil, nil, fmt.Errorf("proxy: %w", err)
		}
	}
	var client *ssh.Client
	var closer func()
	var lastErr error
	failures := 0
	ok, _, err := retry.Until(ctx, retry.Acceptor{
		Accept: func(try int, _ time.Duration) (bool, any, error) {
			client, closer, lastErr = c.dialOnce(ctx, cfg, proxyCfg)
			if lastErr == nil {
				return true, nil, nil
			}
			failures++
			var mismatch *hostKeyMismatch
			// pulumi-command: "max allowed errors": the attempt after the limit'th error is final.
			if errors.As(lastErr, &mismatch) || c.DialErrorLimit >= 0 && failures > c.DialErrorLimit {
				return false, nil, lastErr
			}
			return false, nil, nil
		},
	})
	if !ok {
		cleanupAuth()
		cleanupProxyAuth()
		if err == nil {
			err = fmt.Errorf("cancelled (last error: %v)", lastErr)
		}
		return nil, nil, fmt.Errorf("dialing %s@%s (%d attempts): %w", c.User, c.address(), failures, err)
	}
	return client, func() { closer(); cleanupAuth(); cleanupProxyAuth() }, nil
}

// runRemote runs command over SSH. The environment (and PULUMI_COMMAND_STDOUT/STDERR) is sent
// with SSH "env" requests like pulumi-command: a server that refuses them (OpenSSH without a
// matching AcceptEnv) runs the command without those variables, silently.
func runRemote(ctx context.Context, a *commandArgs, which, command, prevStdout, prevStderr string,
	log lineLogger,
) (string, string, error) {
	if a.Connection == nil {
		return "", "", errors.New("connection is not known")
	}
	client, closeClient, err := a.Connection.dial(ctx)
	if err != nil {
		return "", "", err
	}
	defer closeClient()
	session, err := client.NewSession()
	if err != nil {
		return "", "", fmt.Errorf("opening an SSH session on %s: %w", a.Connection.address(), err)
	}
	defer session.Close()
	for k, v := range a.Environment {
		_ = session.Setenv(k, v)
	}
	if a.AddPreviousOutputInEnv {
		if prevStdout != "" {
			_ = session.Setenv(envPrevStdout, prevStdout)
		}
		if prevStderr != "" {
			_ = session.Setenv(envPrevStderr, prevStderr)
		}
	}
	if a.Stdin != nil && *a.Stdin != "" {
		session.Stdin = strings.NewReader(*a.Stdin)
	}
	c := newCapture(a, log)
	session.Stdout = c.stdoutWriter()
	session.Stderr = c.stderrWriter()

	done := make(chan error, 1)
	go func() { done <- session.Run(command) }()
	select {
	case err = <-done:
	case <-ctx.Done():
		_ = session.Signal(ssh.SIGKILL)
		closeClient()
		<-done
		err = fmt.Errorf("cancelled (%v)", ctx.Err())
	}
	c.flush()
	if err != nil {
		return "", "", c.failure(err, a, which, command)
	}
	stdout, stderr := c.results()
	return stdout, stderr, nil
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// runRemoteScript runs a shell script on an open client with stdin as its input.
func runRemoteScript(client *ssh.Client, script string, stdin io.Reader) error {
	session, err := client.NewSession()
	if err != nil {
		return err
	}
	defer session.Close()
	var out lockedBuffer
	session.Stdin = stdin
	session.Stdout = &out
	session.Stderr = &out
	if err := session.Run(script); err != nil {
		return fmt.Errorf("%w: %s", err, tail(out.String()))
	}
	return nil
}
