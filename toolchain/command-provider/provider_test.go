package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/common/diag"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/structpb"
)

const (
	localURN  = "urn:pulumi:dev::proj::command:local:Command::cmd"
	remoteURN = "urn:pulumi:dev::proj::command:remote:Command::rcmd"
	copyURN   = "urn:pulumi:dev::proj::command:remote:CopyToRemote::cp"
)

// recorder is a fake engine host that records log lines.
type recorder struct {
	mu    sync.Mutex
	lines []string
}

func (r *recorder) LogStatus(_ context.Context, _ diag.Severity, _ resource.URN, msg string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lines = append(r.lines, msg)
	return nil
}

func (r *recorder) all() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.lines, "\n")
}

func props(t *testing.T, m map[string]any) *structpb.Struct {
	t.Helper()
	s, err := marshal(resource.NewPropertyMapFromMap(m), "test")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func secretProps(t *testing.T, m map[string]any, secret ...string) *structpb.Struct {
	t.Helper()
	pm := resource.NewPropertyMapFromMap(m)
	for _, k := range secret {
		pm[resource.PropertyKey(k)] = resource.MakeSecret(pm[resource.PropertyKey(k)])
	}
	s, err := marshal(pm, "test")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func decode(t *testing.T, s *structpb.Struct) resource.PropertyMap {
	t.Helper()
	m, err := unmarshal(s, "test")
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func create(t *testing.T, p *commandProvider, urn string, in *structpb.Struct) (resource.PropertyMap, error) {
	t.Helper()
	resp, err := p.Create(context.Background(), &pulumirpc.CreateRequest{Urn: urn, Properties: in})
	if err != nil {
		return nil, err
	}
	if resp.Id == "" {
		t.Fatal("empty id")
	}
	return decode(t, resp.Properties), nil
}

func mustCreate(t *testing.T, p *commandProvider, urn string, in *structpb.Struct) resource.PropertyMap {
	t.Helper()
	out, err := create(t, p, urn, in)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func diff(t *testing.T, olds, news map[string]any) *pulumirpc.DiffResponse {
	t.Helper()
	p := newProvider(nil)
	resp, err := p.Diff(context.Background(), &pulumirpc.DiffRequest{Urn: localURN, Olds: props(t, olds), News: props(t, news)})
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func TestPluginInfoAndConfigure(t *testing.T) {
	p := newProvider(nil)
	info, _ := p.GetPluginInfo(context.Background(), &emptypb.Empty{})
	if info.Version != "1.2.1" {
		t.Errorf("version %q", info.Version)
	}
	c, _ := p.Configure(context.Background(), &pulumirpc.ConfigureRequest{})
	if !c.AcceptSecrets || !c.SupportsPreview {
		t.Errorf("configure %v", c)
	}
	s, err := p.GetSchema(context.Background(), &pulumirpc.GetSchemaRequest{})
	if err != nil || !strings.Contains(s.Schema, `"command:remote:Command"`) || !strings.Contains(s.Schema, `"version":"1.2.1"`) {
		t.Errorf("schema %v %v", err, s)
	}
}

func TestDiff(t *testing.T) {
	base := map[string]any{"create": "echo a", "triggers": []any{"x", 1.0}, "stdout": "a", "stderr": ""}
	in := map[string]any{"create": "echo a", "triggers": []any{"x", 1.0}}

	if d := diff(t, base, in); d.Changes != pulumirpc.DiffResponse_DIFF_NONE {
		t.Errorf("no change: %v", d)
	}
	// A change of a trigger replaces.
	d := diff(t, base, map[string]any{"create": "echo a", "triggers": []any{"x", 2.0}})
	if d.Changes != pulumirpc.DiffResponse_DIFF_SOME || len(d.Replaces) != 1 || d.Replaces[0] != "triggers" ||
		d.DetailedDiff["triggers"].Kind != pulumirpc.PropertyDiff_UPDATE_REPLACE {
		t.Errorf("trigger change: %v", d)
	}
	// A change of create (or any other input) updates in place.
	d = diff(t, base, map[string]any{"create": "echo b", "triggers": []any{"x", 1.0}})
	if d.Changes != pulumirpc.DiffResponse_DIFF_SOME || len(d.Replaces) != 0 ||
		d.DetailedDiff["create"].Kind != pulumirpc.PropertyDiff_UPDATE {
		t.Errorf("create change: %v", d)
	}
	d = diff(t, base, map[string]any{"create": "echo a", "triggers": []any{"x", 1.0}, "environment": map[string]any{"A": "1"}})
	if len(d.Replaces) != 0 || d.DetailedDiff["environment"].Kind != pulumirpc.PropertyDiff_ADD {
		t.Errorf("environment added: %v", d)
	}
	// Adding triggers replaces too.
	d = diff(t, map[string]any{"create": "x", "stdout": ""}, map[string]any{"create": "x", "triggers": []any{"t"}})
	if len(d.Replaces) != 1 || d.DetailedDiff["triggers"].Kind != pulumirpc.PropertyDiff_ADD_REPLACE {
		t.Errorf("triggers added: %v", d)
	}
	// Secretness alone is no change; an unknown value is.
	p := newProvider(nil)
	r, err := p.Diff(context.Background(), &pulumirpc.DiffRequest{Urn: localURN, Olds: props(t, base),
		News: secretProps(t, in, "create")})
	if err != nil || r.Changes != pulumirpc.DiffResponse_DIFF_NONE {
		t.Errorf("secret create: %v %v", r, err)
	}
	unk := resource.NewPropertyMapFromMap(in)
	unk["create"] = unknownString()
	us, _ := marshal(unk, "t")
	r, _ = p.Diff(context.Background(), &pulumirpc.DiffRequest{Urn: localURN, Olds: props(t, base), News: us})
	if r.Changes != pulumirpc.DiffResponse_DIFF_SOME || len(r.Replaces) != 0 {
		t.Errorf("unknown create: %v", r)
	}
}

func TestCheck(t *testing.T) {
	p := newProvider(nil)
	for _, tc := range []struct {
		in   map[string]any
		prop string
	}{
		{map[string]any{"create": "x", "logging": "loud"}, "logging"},
		{map[string]any{"create": "x", "assetPaths": []any{"*.txt"}}, "assetPaths"},
		{map[string]any{"create": 3.0}, "create"},
	} {
		r, err := p.Check(context.Background(), &pulumirpc.CheckRequest{Urn: localURN, News: props(t, tc.in)})
		if err != nil || len(r.Failures) != 1 || r.Failures[0].Property != tc.prop {
			t.Errorf("%v: %v %v", tc.in, r, err)
		}
	}
	r, _ := p.Check(context.Background(), &pulumirpc.CheckRequest{Urn: remoteURN, News: props(t, map[string]any{"create": "x"})})
	if len(r.Failures) != 1 || r.Failures[0].Property != "connection" {
		t.Errorf("remote without connection: %v", r)
	}
	r, _ = p.Check(context.Background(), &pulumirpc.CheckRequest{Urn: localURN, News: props(t, map[string]any{"create": "x", "triggers": []any{1.0, "a", map[string]any{"k": true}}})})
	if len(r.Failures) != 0 {
		t.Errorf("valid inputs: %v", r)
	}
}

func TestCreateUpdateDelete(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, "deleted")
	p := newProvider(nil)
	in := map[string]any{
		"create":      "printf 'created %s\\n' \"$FOO\"; pwd; echo oops >&2",
		"delete":      "printf '%s|%s' \"$PULUMI_COMMAND_STDOUT\" \"$PULUMI_COMMAND_STDERR\" > " + marker,
		"environment": map[string]any{"FOO": "bar"},
		"dir":         dir,
	}
	out := mustCreate(t, p, localURN, props(t, in))
	wantOut := "created bar\n" + dir
	if got := out["stdout"].StringValue(); got != wantOut {
		t.Errorf("stdout %q, want %q", got, wantOut)
	}
	if got := out["stderr"].StringValue(); got != "oops" {
		t.Errorf("stderr %q", got)
	}
	if out["create"].StringValue() != in["create"] || out["environment"].ObjectValue()["FOO"].StringValue() != "bar" {
		t.Errorf("inputs not in outputs: %v", out)
	}

	// Update without `update` runs create again, with the previous output in the environment.
	in2 := map[string]any{"create": "echo \"prev=$PULUMI_COMMAND_STDOUT\"", "delete": in["delete"], "dir": dir}
	st, _ := marshal(out, "t")
	u, err := p.Update(context.Background(), &pulumirpc.UpdateRequest{Urn: localURN, Olds: st, News: props(t, in2)})
	if err != nil {
		t.Fatal(err)
	}
	uo := decode(t, u.Properties)
	if got := uo["stdout"].StringValue(); got != "prev="+wantOut {
		t.Errorf("update stdout %q", got)
	}
	// With `update`, update runs.
	in3 := map[string]any{"create": "echo create", "update": "echo update", "delete": in["delete"], "dir": dir}
	st, _ = marshal(uo, "t")
	u, err = p.Update(context.Background(), &pulumirpc.UpdateRequest{Urn: localURN, Olds: st, News: props(t, in3)})
	if err != nil {
		t.Fatal(err)
	}
	uo = decode(t, u.Properties)
	if uo["stdout"].StringValue() != "update" {
		t.Errorf("update command: %v", uo["stdout"])
	}

	// Delete runs delete with the last stdout/stderr.
	st, _ = marshal(uo, "t")
	if _, err := p.Delete(context.Background(), &pulumirpc.DeleteRequest{Urn: localURN, Id: "x", Properties: st}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(marker)
	if err != nil || string(b) != "update|" {
		t.Errorf("delete marker %q %v", b, err)
	}

	// addPreviousOutputInEnv=false hides them.
	uo["addPreviousOutputInEnv"] = resource.NewBoolProperty(false)
	uo["delete"] = resource.NewStringProperty("printf '[%s]' \"$PULUMI_COMMAND_STDOUT\" > " + marker)
	st, _ = marshal(uo, "t")
	if _, err := p.Delete(context.Background(), &pulumirpc.DeleteRequest{Urn: localURN, Id: "x", Properties: st}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(marker); string(b) != "[]" {
		t.Errorf("addPreviousOutputInEnv=false: %q", b)
	}
}

func TestStdinAndInterpreter(t *testing.T) {
	p := newProvider(nil)
	out := mustCreate(t, p, localURN, props(t, map[string]any{"create": "tr a-z A-Z", "stdin": "hello\nworld\n"}))
	if got := out["stdout"].StringValue(); got != "HELLO\nWORLD" {
		t.Errorf("stdin: %q", got)
	}
	out = mustCreate(t, p, localURN, props(t, map[string]any{
		"create": "print('py', end='')", "interpreter": []any{"python3", "-c"}}))
	if _, err := os.Stat("/usr/bin/python3"); err == nil && out["stdout"].StringValue() != "py" {
		t.Errorf("interpreter: %v", out["stdout"])
	}
}

func TestNoCreateCommand(t *testing.T) {
	out := mustCreate(t, newProvider(nil), localURN, props(t, map[string]any{"delete": "true"}))
	if out["stdout"].StringValue() != "" || out["stderr"].StringValue() != "" {
		t.Errorf("%v", out)
	}
}

func TestPreview(t *testing.T) {
	dir := t.TempDir()
	p := newProvider(nil)
	resp, err := p.Create(context.Background(), &pulumirpc.CreateRequest{Urn: localURN, Preview: true,
		Properties: props(t, map[string]any{"create": "touch " + filepath.Join(dir, "ran")})})
	if err != nil {
		t.Fatal(err)
	}
	out := decode(t, resp.Properties)
	if !out["stdout"].IsComputed() || !out["stderr"].IsComputed() {
		t.Errorf("preview outputs: %v", out)
	}
	if _, err := os.Stat(filepath.Join(dir, "ran")); err == nil {
		t.Error("preview ran the command")
	}
	st := props(t, map[string]any{"create": "true", "stdout": "old", "stderr": ""})
	u, err := p.Update(context.Background(), &pulumirpc.UpdateRequest{Urn: localURN, Preview: true, Olds: st,
		News: props(t, map[string]any{"create": "touch " + filepath.Join(dir, "ran")})})
	if err != nil {
		t.Fatal(err)
	}
	if out := decode(t, u.Properties); !out["stdout"].IsComputed() {
		t.Errorf("update preview: %v", out)
	}
	if _, err := os.Stat(filepath.Join(dir, "ran")); err == nil {
		t.Error("update preview ran the command")
	}
}

func TestLoggingFilter(t *testing.T) {
	cmd := "echo out-line-1; echo err-line-1 >&2; echo out-line-2; printf err-no-newline >&2"
	for _, tc := range []struct {
		logging   string
		want, not []string
	}{
		{"", []string{"out-line-1", "out-line-2", "err-line-1", "err-no-newline"}, nil},
		{"stdoutAndStderr", []string{"out-line-1", "err-line-1"}, nil},
		{"stderr", []string{"err-line-1", "err-no-newline"}, []string{"out-line"}},
		{"stdout", []string{"out-line-1", "out-line-2"}, []string{"err-"}},
		{"none", nil, []string{"out-line", "err-"}},
	} {
		rec := &recorder{}
		in := map[string]any{"create": cmd}
		if tc.logging != "" {
			in["logging"] = tc.logging
		}
		out := mustCreate(t, newProvider(rec), localURN, props(t, in))
		if out["stdout"].StringValue() != "out-line-1\nout-line-2" {
			t.Errorf("%s: stdout is captured whatever the logging: %q", tc.logging, out["stdout"].StringValue())
		}
		logged := rec.all()
		for _, w := range tc.want {
			if !strings.Contains(logged, w) {
				t.Errorf("logging=%q: %q not logged in %q", tc.logging, w, logged)
			}
		}
		for _, n := range tc.not {
			if strings.Contains(logged, n) {
				t.Errorf("logging=%q: %q logged in %q", tc.logging, n, logged)
			}
		}
	}
}

func TestFailure(t *testing.T) {
	p := newProvider(nil)
	_, err := create(t, p, localURN, props(t, map[string]any{
		"create": "echo visible-out; echo boom-detail >&2; exit 3"}))
	if err == nil || !strings.Contains(err.Error(), "exit status 3") || !strings.Contains(err.Error(), "boom-detail") ||
		!strings.Contains(err.Error(), "visible-out") || !strings.Contains(err.Error(), "echo visible-out") {
		t.Errorf("failure message: %v", err)
	}
	// logging=stderr: stdout (maybe a secret) stays out of the error; a secret command line too.
	_, err = create(t, p, localURN, secretProps(t, map[string]any{
		"create": "printf 's3c%s\\n' r3t-out; echo boom-detail >&2; exit 4", "logging": "stderr"}, "create"))
	if err == nil || !strings.Contains(err.Error(), "exit status 4") || !strings.Contains(err.Error(), "boom-detail") ||
		strings.Contains(err.Error(), "s3cr3t") {
		t.Errorf("failure message with logging=stderr: %v", err)
	}
	// Update failure is an error too.
	_, err = p.Update(context.Background(), &pulumirpc.UpdateRequest{Urn: localURN,
		Olds: props(t, map[string]any{"create": "true", "stdout": "", "stderr": ""}),
		News: props(t, map[string]any{"create": "false"})})
	if err == nil {
		t.Error("update failure not reported")
	}
	// A missing dir fails.
	if _, err = create(t, p, localURN, props(t, map[string]any{"create": "true", "dir": "/nonexistent/dir"})); err == nil {
		t.Error("missing dir accepted")
	}
}

func TestSecretsPropagate(t *testing.T) {
	p := newProvider(nil)
	out := mustCreate(t, p, localURN, secretProps(t, map[string]any{"create": "cat", "stdin": "pw"}, "stdin"))
	if !out["stdout"].IsSecret() || !out["stdin"].IsSecret() || out["create"].IsSecret() {
		t.Errorf("secrets: %v", out)
	}
	if plain(out["stdout"]).StringValue() != "pw" {
		t.Errorf("stdout %v", out["stdout"])
	}
	out = mustCreate(t, p, localURN, props(t, map[string]any{"create": "echo x"}))
	if out["stdout"].IsSecret() {
		t.Errorf("not a secret: %v", out)
	}
}

func TestCancel(t *testing.T) {
	p := newProvider(nil)
	done := make(chan error, 1)
	start := time.Now()
	go func() {
		_, err := create(t, p, localURN, props(t, map[string]any{"create": "sleep 30; echo late"}))
		done <- err
	}()
	time.Sleep(300 * time.Millisecond)
	p.Cancel(context.Background(), &emptypb.Empty{})
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "cancel") {
			t.Errorf("cancelled run: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Cancel did not stop the command")
	}
	if time.Since(start) > 15*time.Second {
		t.Error("too slow")
	}
}

func TestReadAndRun(t *testing.T) {
	p := newProvider(nil)
	st := props(t, map[string]any{"create": "true", "stdout": "o", "stderr": ""})
	r, err := p.Read(context.Background(), &pulumirpc.ReadRequest{Urn: localURN, Id: "id1", Properties: st})
	if err != nil || r.Id != "id1" || decode(t, r.Inputs)["stdout"].V != nil || decode(t, r.Properties)["stdout"].StringValue() != "o" {
		t.Errorf("read %v %v", r, err)
	}
	inv, err := p.Invoke(context.Background(), &pulumirpc.InvokeRequest{Tok: tokLocalRun,
		Args: props(t, map[string]any{"command": "echo ran"})})
	if err != nil || decode(t, inv.Return)["stdout"].StringValue() != "ran" {
		t.Errorf("run %v %v", inv, err)
	}
}
