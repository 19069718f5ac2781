package main

import (
	"fmt"
	"math"
	"sort"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
)

// Resource and function tokens.
const (
	tokLocalCommand  = "command:local:Command"
	tokRemoteCommand = "command:remote:Command"
	tokCopyToRemote  = "command:remote:CopyToRemote"
	tokLocalRun      = "command:local:run"
)

// Logging values of the `logging` input (enum command:local:Logging / command:remote:Logging).
const (
	logStdout          = "stdout"
	logStderr          = "stderr"
	logStdoutAndStderr = "stdoutAndStderr"
	logNone            = "none"
)

// outputOnlyKeys are the state keys that are not inputs, per resource type.
var outputOnlyKeys = map[string]map[string]bool{
	tokLocalCommand:  {"stdout": true, "stderr": true, "assets": true, "archive": true},
	tokRemoteCommand: {"stdout": true, "stderr": true},
	tokCopyToRemote:  {},
}

// replaceKeys: a change of one of these inputs replaces the resource (the SDKs also register
// replaceOnChanges=["triggers[*]"]).
var replaceKeys = map[string]bool{"triggers": true}

// commandArgs are the decoded inputs of a Command (local or remote) or of local.run.
type commandArgs struct {
	Create, Update, Delete *string
	Stdin                  *string
	Environment            map[string]string
	Dir                    *string
	Interpreter            []string
	Logging                string
	AddPreviousOutputInEnv bool
	AssetPaths             []string
	ArchivePaths           []string
	Connection             *connection
	// secretCommand[k] is true when command input k ("create", "update", "delete") is a secret:
	// the command line is then kept out of error messages.
	secretCommand map[string]bool
}

func (a *commandArgs) logStdout() bool {
	return a.Logging == logStdout || a.Logging == logStdoutAndStderr
}

func (a *commandArgs) logStderr() bool {
	return a.Logging == logStderr || a.Logging == logStdoutAndStderr
}

// connection is the `connection` input of the remote resources (type command:remote:Connection),
// and, for its `proxy`, command:remote:ProxyConnection.
type connection struct {
	Host               string
	Port               int
	User               string
	Password           *string
	PrivateKey         *string
	PrivateKeyPassword *string
	AgentSocketPath    *string
	DialErrorLimit     int
	PerDialTimeout     int
	HostKey            *string
	Proxy              *connection
}

// plain returns v with every secret unwrapped (recursively).
func plain(v resource.PropertyValue) resource.PropertyValue {
	switch {
	case v.IsSecret():
		return plain(v.SecretValue().Element)
	case v.IsArray():
		arr := v.ArrayValue()
		out := make([]resource.PropertyValue, len(arr))
		for i, e := range arr {
			out[i] = plain(e)
		}
		return resource.NewArrayProperty(out)
	case v.IsObject():
		return resource.NewObjectProperty(plainMap(v.ObjectValue()))
	case v.IsOutput():
		o := v.OutputValue()
		if !o.Known {
			return resource.MakeComputed(resource.NewStringProperty(""))
		}
		return plain(o.Element)
	}
	return v
}

func plainMap(m resource.PropertyMap) resource.PropertyMap {
	out := resource.PropertyMap{}
	for k, e := range m {
		if e.IsNull() {
			continue
		}
		out[k] = plain(e)
	}
	return out
}

// decoder reads typed values out of a plain (secret-free) property map and collects errors
// keyed by property path, for Check failures.
type decoder struct {
	prefix string
	errs   []fieldError
}

type fieldError struct{ Property, Reason string }

func (d *decoder) fail(key, format string, args ...any) {
	d.errs = append(d.errs, fieldError{Property: d.prefix + key, Reason: fmt.Sprintf(format, args...)})
}

func (d *decoder) str(m resource.PropertyMap, key string) *string {
	v, ok := m[resource.PropertyKey(key)]
	if !ok || v.IsNull() || v.IsComputed() {
		return nil
	}
	if !v.IsString() {
		d.fail(key, "%s must be a string, not %s", d.prefix+key, v.TypeString())
		return nil
	}
	s := v.StringValue()
	return &s
}

func (d *decoder) boolean(m resource.PropertyMap, key string, def bool) bool {
	v, ok := m[resource.PropertyKey(key)]
	if !ok || v.IsNull() || v.IsComputed() {
		return def
	}
	if !v.IsBool() {
		d.fail(key, "%s must be a boolean, not %s", d.prefix+key, v.TypeString())
		return def
	}
	return v.BoolValue()
}

func (d *decoder) integer(m resource.PropertyMap, key string, def int) int {
	v, ok := m[resource.PropertyKey(key)]
	if !ok || v.IsNull() || v.IsComputed() {
		return def
	}
	if v.IsString() { // tolerate "22"
		var n float64
		if _, err := fmt.Sscanf(v.StringValue(), "%g", &n); err == nil {
			v = resource.NewNumberProperty(n)
		}
	}
	if !v.IsNumber() || v.NumberValue() != math.Trunc(v.NumberValue()) {
		d.fail(key, "%s must be an integer, not %v", d.prefix+key, v)
		return def
	}
	return int(v.NumberValue())
}

func (d *decoder) strings(m resource.PropertyMap, key string) []string {
	v, ok := m[resource.PropertyKey(key)]
	if !ok || v.IsNull() || v.IsComputed() {
		return nil
	}
	if !v.IsArray() {
		d.fail(key, "%s must be a list of strings, not %s", d.prefix+key, v.TypeString())
		return nil
	}
	out := []string{}
	for i, e := range v.ArrayValue() {
		if e.IsComputed() {
			continue
		}
		if !e.IsString() {
			d.fail(fmt.Sprintf("%s[%d]", key, i), "%s[%d] must be a string, not %s", d.prefix+key, i, e.TypeString())
			continue
		}
		out = append(out, e.StringValue())
	}
	return out
}

func (d *decoder) stringMap(m resource.PropertyMap, key string) map[string]string {
	v, ok := m[resource.PropertyKey(key)]
	if !ok || v.IsNull() || v.IsComputed() {
		return nil
	}
	if !v.IsObject() {
		d.fail(key, "%s must be a map of strings, not %s", d.prefix+key, v.TypeString())
		return nil
	}
	out := map[string]string{}
	for k, e := range v.ObjectValue() {
		switch {
		case e.IsNull() || e.IsComputed():
		case e.IsString():
			out[string(k)] = e.StringValue()
		case e.IsNumber() || e.IsBool():
			out[string(k)] = fmt.Sprint(e.V)
		default:
			d.fail(key+"."+string(k), "%s.%s must be a string, not %s", d.prefix+key, k, e.TypeString())
		}
	}
	return out
}

// decodeCommandArgs decodes the inputs of token tok from props (secrets allowed).
func decodeCommandArgs(tok string, props resource.PropertyMap) (*commandArgs, []fieldError) {
	m := plainMap(props)
	d := &decoder{}
	a := &commandArgs{secretCommand: map[string]bool{}}
	if tok == tokLocalRun {
		a.Create = d.str(m, "command")
	} else {
		a.Create = d.str(m, "create")
		a.Update = d.str(m, "update")
		a.Delete = d.str(m, "delete")
	}
	for _, k := range []string{"create", "update", "delete", "command"} {
		if v, ok := props[resource.PropertyKey(k)]; ok && v.ContainsSecrets() {
			a.secretCommand[k] = true
		}
	}
	a.Stdin = d.str(m, "stdin")
	a.Environment = d.stringMap(m, "environment")
	a.AddPreviousOutputInEnv = d.boolean(m, "addPreviousOutputInEnv", true)
	a.Logging = logStdoutAndStderr
	if l := d.str(m, "logging"); l != nil {
		switch *l {
		case logStdout, logStderr, logStdoutAndStderr, logNone:
			a.Logging = *l
		default:
			d.fail("logging", "logging must be one of %q, %q, %q, %q, not %q",
				logStdout, logStderr, logStdoutAndStderr, logNone, *l)
		}
	}
	if v, ok := m["triggers"]; ok && !v.IsNull() && !v.IsComputed() && !v.IsArray() {
		d.fail("triggers", "triggers must be a list, not %s", v.TypeString())
	}
	switch tok {
	case tokLocalCommand, tokLocalRun:
		a.Dir = d.str(m, "dir")
		a.Interpreter = d.strings(m, "interpreter")
		a.AssetPaths = d.strings(m, "assetPaths")
		a.ArchivePaths = d.strings(m, "archivePaths")
		if len(a.AssetPaths) > 0 {
			d.fail("assetPaths", "assetPaths is not supported by this pulumi-resource-command build "+
				"(phoenix toolchain/command-provider); copy files with a command instead")
		}
		if len(a.ArchivePaths) > 0 {
			d.fail("archivePaths", "archivePaths is not supported by this pulumi-resource-command build "+
				"(phoenix toolchain/command-provider); copy files with a command instead")
		}
	case tokRemoteCommand, tokCopyToRemote:
		a.Connection = decodeConnection(d, m, "connection", false)
	}
	return a, d.errs
}

// decodeConnection decodes m[key] as a Connection (proxy=false) or a ProxyConnection.
// It returns nil when the connection is absent or not yet known.
func decodeConnection(d *decoder, m resource.PropertyMap, key string, proxy bool) *connection {
	v, ok := m[resource.PropertyKey(key)]
	if !ok || v.IsNull() {
		if !proxy {
			d.fail(key, "missing required property %q", d.prefix+key)
		}
		return nil
	}
	if v.IsComputed() {
		return nil
	}
	if !v.IsObject() {
		d.fail(key, "%s must be an object, not %s", d.prefix+key, v.TypeString())
		return nil
	}
	cm := v.ObjectValue()
	sub := &decoder{prefix: d.prefix + key + "."}
	c := &connection{}
	unknownHost := false
	if h := sub.str(cm, "host"); h != nil {
		c.Host = *h
	} else if hv, ok := cm["host"]; ok && hv.IsComputed() {
		unknownHost = true
	} else {
		sub.fail("host", "missing required property %q", sub.prefix+"host")
	}
	c.Port = sub.integer(cm, "port", 22)
	c.User = "root"
	if u := sub.str(cm, "user"); u != nil {
		c.User = *u
	}
	c.Password = sub.str(cm, "password")
	c.PrivateKey = sub.str(cm, "privateKey")
	c.PrivateKeyPassword = sub.str(cm, "privateKeyPassword")
	c.AgentSocketPath = sub.str(cm, "agentSocketPath")
	c.DialErrorLimit = sub.integer(cm, "dialErrorLimit", 10)
	c.PerDialTimeout = sub.integer(cm, "perDialTimeout", 15)
	c.HostKey = sub.str(cm, "hostKey")
	if !proxy {
		c.Proxy = decodeConnection(sub, cm, "proxy", true)
	}
	d.errs = append(d.errs, sub.errs...)
	if unknownHost {
		return nil
	}
	return c
}

// inputKeys returns the sorted union of the input keys of olds and news for token tok.
func inputKeys(tok string, olds, news resource.PropertyMap) []string {
	skip := outputOnlyKeys[tok]
	seen := map[string]bool{}
	var keys []string
	for _, m := range []resource.PropertyMap{olds, news} {
		for k := range m {
			ks := string(k)
			if skip[ks] || seen[ks] || len(ks) > 1 && ks[:2] == "__" {
				continue
			}
			seen[ks] = true
			keys = append(keys, ks)
		}
	}
	sort.Strings(keys)
	return keys
}

// inputsOf returns the input part of a state.
func inputsOf(tok string, state resource.PropertyMap) resource.PropertyMap {
	skip := outputOnlyKeys[tok]
	out := resource.PropertyMap{}
	for k, v := range state {
		if !skip[string(k)] {
			out[k] = v
		}
	}
	return out
}
