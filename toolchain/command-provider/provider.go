package main

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/common/diag"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/structpb"
)

// hostLogger is the part of the engine host this provider uses (provider.HostClient).
type hostLogger interface {
	LogStatus(ctx context.Context, sev diag.Severity, urn resource.URN, msg string) error
}

type commandProvider struct {
	pulumirpc.UnimplementedResourceProviderServer

	host hostLogger

	// cancelled by the Cancel RPC: every running command derives its context from it.
	stopCtx context.Context
	stop    context.CancelFunc
}

func newProvider(host hostLogger) *commandProvider {
	ctx, cancel := context.WithCancel(context.Background())
	return &commandProvider{host: host, stopCtx: ctx, stop: cancel}
}

// Secrets and unknowns travel as typed values both ways (Configure answers acceptSecrets).
func unmarshal(s *structpb.Struct, label string) (resource.PropertyMap, error) {
	return plugin.UnmarshalProperties(s, plugin.MarshalOptions{
		Label: label, KeepUnknowns: true, KeepSecrets: true, SkipNulls: true, KeepResources: true,
	})
}

func marshal(m resource.PropertyMap, label string) (*structpb.Struct, error) {
	return plugin.MarshalProperties(m, plugin.MarshalOptions{
		Label: label, KeepUnknowns: true, KeepSecrets: true, KeepResources: true,
	})
}

func checkFailures(errs []fieldError) []*pulumirpc.CheckFailure {
	var out []*pulumirpc.CheckFailure
	for _, e := range errs {
		out = append(out, &pulumirpc.CheckFailure{Property: e.Property, Reason: e.Reason})
	}
	return out
}

func validationError(tok string, errs []fieldError) error {
	var msgs []string
	for _, e := range errs {
		msgs = append(msgs, e.Reason)
	}
	return fmt.Errorf("%s: invalid inputs: %s", tok, strings.Join(msgs, "; "))
}

func knownToken(tok string) bool {
	return tok == tokLocalCommand || tok == tokRemoteCommand || tok == tokCopyToRemote
}

// resourceType is the type token of a URN this provider serves, or an error naming the type.
func resourceType(urn string) (string, error) {
	tok := string(resource.URN(urn).Type())
	if !knownToken(tok) {
		return "", fmt.Errorf("unknown resource type %q", tok)
	}
	return tok, nil
}

func isCommand(tok string) bool { return tok == tokLocalCommand || tok == tokRemoteCommand }

// runCtx is ctx, also cancelled by the Cancel RPC.
func (p *commandProvider) runCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(p.stopCtx, cancel)
	return ctx, func() { stop(); cancel() }
}

func (p *commandProvider) logger(ctx context.Context, urn resource.URN) lineLogger {
	if p.host == nil {
		return nil
	}
	// Like pulumi-command: output lines are status messages (the Info column of the progress view).
	return func(_, line string) { _ = p.host.LogStatus(ctx, diag.Info, urn, line) }
}

// run runs a command of a local or remote Command (or of local.run).
func (p *commandProvider) run(ctx context.Context, tok string, urn resource.URN, a *commandArgs, which,
	command, prevStdout, prevStderr string,
) (string, string, error) {
	ctx, cancel := p.runCtx(ctx)
	defer cancel()
	if tok == tokRemoteCommand {
		return runRemote(ctx, a, which, command, prevStdout, prevStderr, p.logger(ctx, urn))
	}
	return runLocal(ctx, a, which, command, prevStdout, prevStderr, p.logger(ctx, urn))
}

func strOut(m resource.PropertyMap, key string) string {
	v := plain(m[resource.PropertyKey(key)])
	if v.IsString() {
		return v.StringValue()
	}
	return ""
}

// present: the input is given (known or not yet known).
func present(m resource.PropertyMap, key string) bool {
	v, ok := m[resource.PropertyKey(key)]
	return ok && !v.IsNull()
}

// withOutputs returns inputs plus stdout/stderr. Like pulumi-command (every output depends on
// every input), stdout and stderr are secrets as soon as any input holds a secret.
func withOutputs(inputs resource.PropertyMap, stdout, stderr resource.PropertyValue) resource.PropertyMap {
	outs := inputs.Copy()
	secret := inputs.ContainsSecrets()
	for k, v := range map[resource.PropertyKey]resource.PropertyValue{"stdout": stdout, "stderr": stderr} {
		if secret && !v.IsSecret() {
			v = resource.MakeSecret(v)
		}
		outs[k] = v
	}
	return outs
}

func unknownString() resource.PropertyValue {
	return resource.MakeComputed(resource.NewStringProperty(""))
}

// ---- plugin identity, schema, configuration -------------------------------------------------

func (p *commandProvider) GetPluginInfo(context.Context, *emptypb.Empty) (*pulumirpc.PluginInfo, error) {
	return &pulumirpc.PluginInfo{Version: Version}, nil
}

func (p *commandProvider) GetSchema(context.Context, *pulumirpc.GetSchemaRequest) (*pulumirpc.GetSchemaResponse, error) {
	return &pulumirpc.GetSchemaResponse{Schema: schemaJSON()}, nil
}

func (p *commandProvider) CheckConfig(_ context.Context, req *pulumirpc.CheckRequest) (*pulumirpc.CheckResponse, error) {
	return &pulumirpc.CheckResponse{Inputs: req.GetNews()}, nil
}

func (p *commandProvider) DiffConfig(context.Context, *pulumirpc.DiffRequest) (*pulumirpc.DiffResponse, error) {
	// The provider has no configuration.
	return &pulumirpc.DiffResponse{Changes: pulumirpc.DiffResponse_DIFF_NONE}, nil
}

func (p *commandProvider) Configure(context.Context, *pulumirpc.ConfigureRequest) (*pulumirpc.ConfigureResponse, error) {
	return &pulumirpc.ConfigureResponse{AcceptSecrets: true, SupportsPreview: true}, nil
}

func (p *commandProvider) Cancel(context.Context, *emptypb.Empty) (*emptypb.Empty, error) {
	p.stop()
	return &emptypb.Empty{}, nil
}

// ---- resources --------------------------------------------------------------------------------

func (p *commandProvider) Check(_ context.Context, req *pulumirpc.CheckRequest) (*pulumirpc.CheckResponse, error) {
	tok, err := resourceType(req.GetUrn())
	if err != nil {
		return nil, err
	}
	news, err := unmarshal(req.GetNews(), "check.news")
	if err != nil {
		return nil, err
	}
	var errs []fieldError
	_, errs = decodeCommandArgs(tok, news)
	if tok == tokCopyToRemote {
		_, serrs := decodeCopySource(news)
		errs = append(errs, serrs...)
		d := &decoder{}
		if present(news, "remotePath") {
			d.str(plainMap(news), "remotePath")
		} else {
			d.fail("remotePath", "missing required property \"remotePath\"")
		}
		errs = append(errs, d.errs...)
	}
	return &pulumirpc.CheckResponse{Inputs: req.GetNews(), Failures: checkFailures(errs)}, nil
}

// equalInput: olds and news hold the same value for an input (secretness and null/absence aside);
// a value not yet known is a change.
func equalInput(o, n resource.PropertyValue) bool {
	if n.ContainsUnknowns() || o.ContainsUnknowns() {
		return false
	}
	o, n = plain(o), plain(n)
	if o.IsNull() || n.IsNull() {
		return o.IsNull() && n.IsNull()
	}
	return o.DeepEquals(n)
}

func (p *commandProvider) Diff(_ context.Context, req *pulumirpc.DiffRequest) (*pulumirpc.DiffResponse, error) {
	tok, err := resourceType(req.GetUrn())
	if err != nil {
		return nil, err
	}
	olds, err := unmarshal(req.GetOlds(), "diff.olds")
	if err != nil {
		return nil, err
	}
	news, err := unmarshal(req.GetNews(), "diff.news")
	if err != nil {
		return nil, err
	}
	resp := &pulumirpc.DiffResponse{
		Changes: pulumirpc.DiffResponse_DIFF_NONE, HasDetailedDiff: true,
		DetailedDiff: map[string]*pulumirpc.PropertyDiff{},
	}
	for _, k := range inputKeys(tok, olds, news) {
		o, n := olds[resource.PropertyKey(k)], news[resource.PropertyKey(k)]
		if equalInput(o, n) {
			continue
		}
		kind := pulumirpc.PropertyDiff_UPDATE
		switch {
		case o.IsNull():
			kind = pulumirpc.PropertyDiff_ADD
		case n.IsNull():
			kind = pulumirpc.PropertyDiff_DELETE
		}
		if replaceKeys[k] {
			kind += pulumirpc.PropertyDiff_ADD_REPLACE - pulumirpc.PropertyDiff_ADD
			resp.Replaces = append(resp.Replaces, k)
		}
		resp.Diffs = append(resp.Diffs, k)
		resp.DetailedDiff[k] = &pulumirpc.PropertyDiff{Kind: kind, InputDiff: true}
		resp.Changes = pulumirpc.DiffResponse_DIFF_SOME
	}
	sort.Strings(resp.Replaces)
	return resp, nil
}

func (p *commandProvider) Create(ctx context.Context, req *pulumirpc.CreateRequest) (*pulumirpc.CreateResponse, error) {
	urn := resource.URN(req.GetUrn())
	tok, err := resourceType(req.GetUrn())
	if err != nil {
		return nil, err
	}
	news, err := unmarshal(req.GetProperties(), "create.properties")
	if err != nil {
		return nil, err
	}
	var outs resource.PropertyMap
	if tok == tokCopyToRemote {
		if !req.GetPreview() {
			if err := p.copy(ctx, tok, news); err != nil {
				return nil, err
			}
		}
		outs = news
	} else {
		a, errs := decodeCommandArgs(tok, news)
		if len(errs) > 0 {
			return nil, validationError(tok, errs)
		}
		switch {
		case !present(news, "create"):
			outs = withOutputs(news, resource.NewStringProperty(""), resource.NewStringProperty(""))
		case req.GetPreview():
			outs = withOutputs(news, unknownString(), unknownString())
		default:
			stdout, stderr, err := p.run(ctx, tok, urn, a, "create", *a.Create, "", "")
			if err != nil {
				// Nothing is recorded: the engine keeps no state for a failed create.
				return nil, err
			}
			outs = withOutputs(news, resource.NewStringProperty(stdout), resource.NewStringProperty(stderr))
		}
	}
	props, err := marshal(outs, "create.outputs")
	if err != nil {
		return nil, err
	}
	id := ""
	if !req.GetPreview() {
		if id, err = resource.NewUniqueHex(urn.Name(), 8, 0); err != nil {
			return nil, err
		}
	}
	return &pulumirpc.CreateResponse{Id: id, Properties: props}, nil
}

func (p *commandProvider) copy(ctx context.Context, tok string, inputs resource.PropertyMap) error {
	a, errs := decodeCommandArgs(tok, inputs)
	src, serrs := decodeCopySource(inputs)
	errs = append(errs, serrs...)
	if len(errs) > 0 {
		return validationError(tok, errs)
	}
	ctx, cancel := p.runCtx(ctx)
	defer cancel()
	return copyToRemote(ctx, a.Connection, src, strOut(inputs, "remotePath"))
}

func (p *commandProvider) Update(ctx context.Context, req *pulumirpc.UpdateRequest) (*pulumirpc.UpdateResponse, error) {
	urn := resource.URN(req.GetUrn())
	tok, err := resourceType(req.GetUrn())
	if err != nil {
		return nil, err
	}
	olds, err := unmarshal(req.GetOlds(), "update.olds")
	if err != nil {
		return nil, err
	}
	news, err := unmarshal(req.GetNews(), "update.news")
	if err != nil {
		return nil, err
	}
	var outs resource.PropertyMap
	if tok == tokCopyToRemote {
		// Copy again when what is copied or where changed (not for a connection change alone).
		if !req.GetPreview() && (!equalInput(olds["source"], news["source"]) ||
			!equalInput(olds["remotePath"], news["remotePath"])) {
			if err := p.copy(ctx, tok, news); err != nil {
				return nil, err
			}
		}
		outs = news
	} else {
		a, errs := decodeCommandArgs(tok, news)
		if len(errs) > 0 {
			return nil, validationError(tok, errs)
		}
		// The update command, else the create command.
		which := "update"
		if !present(news, which) {
			which = "create"
		}
		prevOut, prevErr := strOut(olds, "stdout"), strOut(olds, "stderr")
		switch {
		case !present(news, which):
			outs = withOutputs(news, resource.NewStringProperty(prevOut), resource.NewStringProperty(prevErr))
		case req.GetPreview():
			outs = withOutputs(news, unknownString(), unknownString())
		default:
			command := a.Create
			if which == "update" {
				command = a.Update
			}
			stdout, stderr, err := p.run(ctx, tok, urn, a, which, *command, prevOut, prevErr)
			if err != nil {
				return nil, err
			}
			outs = withOutputs(news, resource.NewStringProperty(stdout), resource.NewStringProperty(stderr))
		}
	}
	props, err := marshal(outs, "update.outputs")
	if err != nil {
		return nil, err
	}
	return &pulumirpc.UpdateResponse{Properties: props}, nil
}

func (p *commandProvider) Delete(ctx context.Context, req *pulumirpc.DeleteRequest) (*emptypb.Empty, error) {
	urn := resource.URN(req.GetUrn())
	tok, err := resourceType(req.GetUrn())
	if err != nil {
		return nil, err
	}
	if !isCommand(tok) {
		// CopyToRemote leaves the copied files in place, like pulumi-command.
		return &emptypb.Empty{}, nil
	}
	state, err := unmarshal(req.GetProperties(), "delete.properties")
	if err != nil {
		return nil, err
	}
	a, errs := decodeCommandArgs(tok, state)
	if len(errs) > 0 {
		return nil, validationError(tok, errs)
	}
	if a.Delete == nil {
		return &emptypb.Empty{}, nil
	}
	_, _, err = p.run(ctx, tok, urn, a, "delete", *a.Delete, strOut(state, "stdout"), strOut(state, "stderr"))
	if err != nil {
		return nil, err
	}
	return &emptypb.Empty{}, nil
}

// Read (refresh, import by `get`): the state is what the provider last recorded; nothing is run.
func (p *commandProvider) Read(_ context.Context, req *pulumirpc.ReadRequest) (*pulumirpc.ReadResponse, error) {
	tok, err := resourceType(req.GetUrn())
	if err != nil {
		return nil, err
	}
	inputs := req.GetInputs()
	if inputs == nil || len(inputs.GetFields()) == 0 {
		state, err := unmarshal(req.GetProperties(), "read.properties")
		if err != nil {
			return nil, err
		}
		if inputs, err = marshal(inputsOf(tok, state), "read.inputs"); err != nil {
			return nil, err
		}
	}
	return &pulumirpc.ReadResponse{Id: req.GetId(), Properties: req.GetProperties(), Inputs: inputs}, nil
}

// Invoke implements the function command:local:run (runs on every program run).
func (p *commandProvider) Invoke(ctx context.Context, req *pulumirpc.InvokeRequest) (*pulumirpc.InvokeResponse, error) {
	if req.GetTok() != tokLocalRun {
		return nil, fmt.Errorf("unknown function %q", req.GetTok())
	}
	args, err := unmarshal(req.GetArgs(), "invoke.args")
	if err != nil {
		return nil, err
	}
	a, errs := decodeCommandArgs(tokLocalRun, args)
	if len(errs) > 0 {
		return &pulumirpc.InvokeResponse{Failures: checkFailures(errs)}, nil
	}
	if a.Create == nil {
		return nil, errors.New("command:local:run: missing required argument \"command\"")
	}
	stdout, stderr, err := p.run(ctx, tokLocalRun, "", a, "command", *a.Create, "", "")
	if err != nil {
		return nil, err
	}
	ret, err := marshal(withOutputs(args, resource.NewStringProperty(stdout), resource.NewStringProperty(stderr)),
		"invoke.return")
	if err != nil {
		return nil, err
	}
	return &pulumirpc.InvokeResponse{Return: ret}, nil
}
