package main

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/archive"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/asset"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"golang.org/x/crypto/ssh"
)

type keyPair struct {
	privatePEM string
	public     ssh.PublicKey
	signer     ssh.Signer
}

func newKey(t *testing.T) keyPair {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return keyPair{privatePEM: string(pem.EncodeToMemory(block)), public: signer.PublicKey(), signer: signer}
}

func authorizedLine(k ssh.PublicKey) string {
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k)))
}

// testServer is an in-process SSH server (golang.org/x/crypto/ssh) that runs exec requests with
// /bin/sh -c, optionally honours env requests, and forwards direct-tcpip channels (for proxies).
type testServer struct {
	addr      string
	host      keyPair
	client    keyPair
	acceptEnv bool
}

func startTestServer(t *testing.T, acceptEnv bool) *testServer {
	t.Helper()
	s := &testServer{host: newKey(t), client: newKey(t), acceptEnv: acceptEnv}
	cfg := &ssh.ServerConfig{PublicKeyCallback: func(_ ssh.ConnMetadata, k ssh.PublicKey) (*ssh.Permissions, error) {
		if string(k.Marshal()) == string(s.client.public.Marshal()) {
			return nil, nil
		}
		return nil, errors.New("unknown key")
	}}
	cfg.AddHostKey(s.host.signer)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	s.addr = ln.Addr().String()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go s.serve(conn, cfg)
		}
	}()
	return s
}

func (s *testServer) serve(conn net.Conn, cfg *ssh.ServerConfig) {
	_, chans, reqs, err := ssh.NewServerConn(conn, cfg)
	if err != nil {
		conn.Close()
		return
	}
	go ssh.DiscardRequests(reqs)
	for nc := range chans {
		switch nc.ChannelType() {
		case "session":
			ch, creqs, err := nc.Accept()
			if err != nil {
				continue
			}
			go s.session(ch, creqs)
		case "direct-tcpip":
			var p struct {
				Host     string
				Port     uint32
				OrigHost string
				OrigPort uint32
			}
			if err := ssh.Unmarshal(nc.ExtraData(), &p); err != nil {
				nc.Reject(ssh.ConnectionFailed, err.Error())
				continue
			}
			target, err := net.Dial("tcp", net.JoinHostPort(p.Host, strconv.Itoa(int(p.Port))))
			if err != nil {
				nc.Reject(ssh.ConnectionFailed, err.Error())
				continue
			}
			ch, creqs, err := nc.Accept()
			if err != nil {
				target.Close()
				continue
			}
			go ssh.DiscardRequests(creqs)
			go func() { io.Copy(target, ch); target.Close() }()
			go func() { io.Copy(ch, target); ch.Close() }()
		default:
			nc.Reject(ssh.UnknownChannelType, "unsupported")
		}
	}
}

func (s *testServer) session(ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	var env []string
	for req := range reqs {
		switch req.Type {
		case "env":
			var kv struct{ Name, Value string }
			ssh.Unmarshal(req.Payload, &kv)
			if s.acceptEnv {
				env = append(env, kv.Name+"="+kv.Value)
			}
			req.Reply(s.acceptEnv, nil)
		case "exec":
			var c struct{ Command string }
			ssh.Unmarshal(req.Payload, &c)
			req.Reply(true, nil)
			cmd := exec.Command("/bin/sh", "-c", c.Command)
			cmd.Env = append(os.Environ(), env...)
			cmd.Stdin, cmd.Stdout, cmd.Stderr = ch, ch, ch.Stderr()
			code := 0
			if err := cmd.Run(); err != nil {
				code = 255
				var ee *exec.ExitError
				if errors.As(err, &ee) {
					code = ee.ExitCode()
				}
			}
			ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{uint32(code)}))
			return
		default:
			req.Reply(false, nil)
		}
	}
}

func (s *testServer) connection() map[string]any {
	host, port, _ := net.SplitHostPort(s.addr)
	p, _ := strconv.Atoi(port)
	return map[string]any{"host": host, "port": float64(p), "user": "tester", "privateKey": s.client.privatePEM,
		"hostKey": authorizedLine(s.host.public), "dialErrorLimit": 2.0, "perDialTimeout": 5.0}
}

func TestRemoteCommandInProcessServer(t *testing.T) {
	srv := startTestServer(t, true)
	dir := t.TempDir()
	marker := filepath.Join(dir, "deleted")
	rec := &recorder{}
	p := newProvider(rec)
	conn := srv.connection()
	in := map[string]any{
		"connection":  conn,
		"create":      `read line; echo "got $line $PHX_VAR"; echo warn >&2`,
		"delete":      `printf '%s' "$PULUMI_COMMAND_STDOUT" > ` + marker,
		"stdin":       "hello\n",
		"environment": map[string]any{"PHX_VAR": "v1"},
		"logging":     "stderr",
	}
	s := resource.NewPropertyMapFromMap(in)
	s["connection"] = resource.MakeSecret(s["connection"])
	st, _ := marshal(s, "t")
	out := mustCreate(t, p, remoteURN, st)
	if got := plain(out["stdout"]).StringValue(); got != "got hello v1" {
		t.Errorf("stdout %q", got)
	}
	if got := plain(out["stderr"]).StringValue(); got != "warn" {
		t.Errorf("stderr %q", got)
	}
	if !out["stdout"].IsSecret() || !out["connection"].IsSecret() {
		t.Error("a secret connection makes the outputs secret")
	}
	if l := rec.all(); strings.Contains(l, "got hello") || !strings.Contains(l, "warn") {
		t.Errorf("logging=stderr logged %q", l)
	}
	so, _ := marshal(out, "t")
	if _, err := p.Delete(context.Background(), &pulumirpc.DeleteRequest{Urn: remoteURN, Id: "x", Properties: so}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(marker); string(b) != "got hello v1" {
		t.Errorf("delete saw PULUMI_COMMAND_STDOUT=%q", b)
	}

	// Failure: exit status and stderr in the message, stdout not (logging=stderr).
	_, err := create(t, p, remoteURN, props(t, map[string]any{"connection": conn, "logging": "stderr",
		"create": "printf 'hid%s\\n' den-out; echo remote-boom >&2; exit 7"}))
	if err == nil || !strings.Contains(err.Error(), "7") || !strings.Contains(err.Error(), "remote-boom") ||
		strings.Contains(err.Error(), "hidden-out") {
		t.Errorf("remote failure: %v", err)
	}

	// A wrong pinned host key is refused at the first attempt (no retries), with both fingerprints.
	bad := srv.connection()
	wrong := newKey(t).public
	bad["hostKey"] = authorizedLine(wrong)
	bad["dialErrorLimit"] = 5.0
	_, err = create(t, p, remoteURN, props(t, map[string]any{"connection": bad, "create": "true"}))
	if err == nil || !strings.Contains(err.Error(), "(1 attempts)") || !strings.Contains(err.Error(), "host key mismatch: "+srv.addr) ||
		!strings.Contains(err.Error(), ssh.FingerprintSHA256(srv.host.public)) ||
		!strings.Contains(err.Error(), "pins ssh-ed25519 "+ssh.FingerprintSHA256(wrong)) {
		t.Errorf("wrong host key: %v", err)
	}
}

func TestRemoteAgentNotUsedBesideAPrivateKey(t *testing.T) {
	// An operator's agent listens: beside a private key it must not become a second identity.
	sock := filepath.Join(t.TempDir(), "agent")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	t.Setenv("SSH_AUTH_SOCK", sock)
	key := newKey(t).privatePEM
	c := &connection{User: "u", Host: "h", Port: 22, PrivateKey: &key}
	cfg, cleanup, err := c.clientConfig()
	if err != nil {
		t.Fatal(err)
	}
	defer cleanup()
	if len(cfg.Auth) != 1 {
		t.Errorf("auth methods beside the private key: %d", len(cfg.Auth)-1)
	}
	agentOnly := &connection{User: "u", Host: "h", Port: 22}
	cfg, cleanup, err = agentOnly.clientConfig()
	if err != nil || len(cfg.Auth) != 1 {
		t.Errorf("without a key, $SSH_AUTH_SOCK is still the fallback: %v", err)
	} else {
		cleanup()
	}
}

func TestRemoteEnvRefused(t *testing.T) {
	// Like OpenSSH without AcceptEnv: the variables are dropped, the command still runs.
	srv := startTestServer(t, false)
	out := mustCreate(t, newProvider(nil), remoteURN, props(t, map[string]any{
		"connection": srv.connection(), "create": `echo "[$PHX_VAR]"`, "environment": map[string]any{"PHX_VAR": "v"}}))
	if got := out["stdout"].StringValue(); got != "[]" {
		t.Errorf("stdout %q", got)
	}
}

func TestRemoteDialRetries(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().(*net.TCPAddr)
	ln.Close()
	start := time.Now()
	_, err := create(t, newProvider(nil), remoteURN, props(t, map[string]any{
		"connection": map[string]any{"host": "127.0.0.1", "port": float64(addr.Port), "password": "x",
			"dialErrorLimit": 2.0, "perDialTimeout": 1.0},
		"create": "true"}))
	if err == nil || !strings.Contains(err.Error(), "3 attempts") || !strings.Contains(err.Error(), "refused") {
		t.Errorf("dial error: %v", err)
	}
	if time.Since(start) > 10*time.Second {
		t.Errorf("retries too slow: %s", time.Since(start))
	}
}

func TestRemoteThroughProxy(t *testing.T) {
	target := startTestServer(t, true)
	bastion := startTestServer(t, true)
	conn := target.connection()
	conn["proxy"] = bastion.connection()
	out := mustCreate(t, newProvider(nil), remoteURN, props(t, map[string]any{"connection": conn, "create": "echo via-proxy"}))
	if out["stdout"].StringValue() != "via-proxy" {
		t.Errorf("%v", out["stdout"])
	}
}

func TestCopyToRemote(t *testing.T) {
	srv := startTestServer(t, true)
	p := newProvider(nil)
	src := t.TempDir()
	dst := t.TempDir()
	file := filepath.Join(src, "f.txt")
	os.WriteFile(file, []byte("file-content"), 0o644)
	os.MkdirAll(filepath.Join(src, "tree", "sub"), 0o755)
	os.WriteFile(filepath.Join(src, "tree", "sub", "x"), []byte("x"), 0o644)

	fa, err := asset.FromPath(file)
	if err != nil {
		t.Fatal(err)
	}
	ta, _ := asset.FromText("text-content")
	da, err := archive.FromPath(filepath.Join(src, "tree"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		source        resource.PropertyValue
		remote, check string
		content       string
	}{
		{resource.NewAssetProperty(fa), filepath.Join(dst, "new", "a.txt"), filepath.Join(dst, "new", "a.txt"), "file-content"},
		{resource.NewAssetProperty(fa), dst, filepath.Join(dst, "f.txt"), "file-content"},
		{resource.NewAssetProperty(ta), filepath.Join(dst, "t.txt"), filepath.Join(dst, "t.txt"), "text-content"},
		{resource.NewArchiveProperty(da), filepath.Join(dst, "d"), filepath.Join(dst, "d", "tree", "sub", "x"), "x"},
	} {
		in := resource.NewPropertyMapFromMap(map[string]any{"connection": srv.connection(), "remotePath": tc.remote})
		in["source"] = tc.source
		st, _ := marshal(in, "t")
		ck, err := p.Check(context.Background(), &pulumirpc.CheckRequest{Urn: copyURN, News: st})
		if err != nil || len(ck.Failures) > 0 {
			t.Fatalf("check: %v %v", ck, err)
		}
		mustCreate(t, p, copyURN, st)
		if b, err := os.ReadFile(tc.check); err != nil || string(b) != tc.content {
			t.Errorf("copy to %s: %q %v", tc.remote, b, err)
		}
	}
}

// TestRemoteRealSshd runs a remote command against OpenSSH's sshd on 127.0.0.1 (SSHD=path to
// override /usr/sbin/sshd). As root without the "sshd" privilege separation user, sshd runs as
// an unprivileged login user instead (sshd only checks that user when run as root).
func TestRemoteRealSshd(t *testing.T) {
	sshd := os.Getenv("SSHD")
	if sshd == "" {
		sshd = "/usr/sbin/sshd"
	}
	if _, err := os.Stat(sshd); err != nil {
		t.Skipf("no sshd at %s (Debian package openssh-server is not installed; set SSHD=/path/to/sshd): %v", sshd, err)
	}
	// Not t.TempDir(): its parent is private to this user, and sshd may run as another one.
	dir, err := os.MkdirTemp("", "cmdprov-sshd-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	login, cred, err := sshdUser()
	if err != nil {
		t.Skip(err.Error())
	}
	hostKey, clientKey := newKey(t), newKey(t)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	files := map[string]string{
		"host_key":        hostKey.privatePEM,
		"authorized_keys": authorizedLine(clientKey.public) + "\n",
		"sshd_config": fmt.Sprintf("Port %d\nListenAddress 127.0.0.1\nHostKey %s\nAuthorizedKeysFile %s\nPidFile %s\n"+
			"StrictModes no\nUsePAM no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nAcceptEnv PHX_*\n"+
			"LogLevel ERROR\n", port, filepath.Join(dir, "host_key"), filepath.Join(dir, "authorized_keys"),
			filepath.Join(dir, "sshd.pid")),
	}
	for name, content := range files {
		f := filepath.Join(dir, name)
		if err := os.WriteFile(f, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if cred != nil {
			os.Chown(f, int(cred.Uid), int(cred.Gid))
		}
	}
	if cred != nil {
		os.Chown(dir, int(cred.Uid), int(cred.Gid))
	}
	cmd := exec.Command(sshd, "-D", "-e", "-f", filepath.Join(dir, "sshd_config"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	var log strings.Builder
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			log.WriteString(sc.Text() + "\n")
		}
	}()
	ready := false
	for i := 0; i < 100 && !ready; i++ {
		if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			c.Close()
			ready = true
		} else {
			time.Sleep(100 * time.Millisecond)
		}
	}
	if !ready {
		t.Fatalf("sshd did not listen: %s", log.String())
	}
	conn := map[string]any{"host": "127.0.0.1", "port": float64(port), "user": login, "privateKey": clientKey.privatePEM,
		"hostKey": authorizedLine(hostKey.public), "dialErrorLimit": 3.0, "perDialTimeout": 5.0}
	out, err := create(t, newProvider(nil), remoteURN, props(t, map[string]any{"connection": conn,
		"create": `read l; echo "$l:$PHX_A:$(id -un)"; echo e >&2`, "stdin": "in\n",
		"environment": map[string]any{"PHX_A": "accepted", "NOT_ACCEPTED": "x"}}))
	if err != nil {
		t.Fatalf("%v\nsshd log:\n%s", err, log.String())
	}
	if got := out["stdout"].StringValue(); got != "in:accepted:"+login {
		t.Errorf("stdout %q", got)
	}
	if got := out["stderr"].StringValue(); got != "e" {
		t.Errorf("stderr %q", got)
	}
	_, err = create(t, newProvider(nil), remoteURN, props(t, map[string]any{"connection": conn, "create": "exit 5"}))
	if err == nil || !strings.Contains(err.Error(), "5") {
		t.Errorf("exit 5: %v", err)
	}
}

// sshdUser: the login (and, when running as root, the credentials) sshd runs with.
func sshdUser() (string, *syscall.Credential, error) {
	if os.Geteuid() != 0 {
		u, err := user.Current()
		if err != nil {
			return "", nil, err
		}
		return u.Username, nil, nil
	}
	if _, err := user.Lookup("sshd"); err == nil {
		return "root", nil, nil
	}
	shells, _ := os.ReadFile("/etc/shells")
	passwd, err := os.ReadFile("/etc/passwd")
	if err != nil {
		return "", nil, err
	}
	for _, line := range strings.Split(string(passwd), "\n") {
		f := strings.Split(line, ":")
		if len(f) < 7 || f[6] == "" || !strings.Contains(string(shells), f[6]+"\n") {
			continue
		}
		uid, _ := strconv.Atoi(f[2])
		gid, _ := strconv.Atoi(f[3])
		if uid >= 1000 && uid < 65534 {
			return f[0], &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
		}
	}
	return "", nil, errors.New("running as root without the sshd privilege separation user, and no " +
		"unprivileged login user (uid >= 1000 with a shell) to run sshd as")
}
