package main

import "encoding/json"

// schemaJSON is a minimal Pulumi package schema of what this provider implements (names and
// types as in pulumi-command 1.2.1; descriptions are short).
func schemaJSON() string {
	str := map[string]any{"type": "string"}
	secretStr := map[string]any{"type": "string", "secret": true}
	strList := map[string]any{"type": "array", "items": str}
	strMap := map[string]any{"type": "object", "additionalProperties": str}
	boolean := map[string]any{"type": "boolean"}
	ref := func(r string) map[string]any { return map[string]any{"$ref": "#/types/" + r} }
	describe := func(p map[string]any, d string) map[string]any {
		out := map[string]any{"description": d}
		for k, v := range p {
			out[k] = v
		}
		return out
	}
	logging := func(mod string) map[string]any {
		var enum []map[string]any
		for _, v := range []string{logStdout, logStderr, logStdoutAndStderr, logNone} {
			enum = append(enum, map[string]any{"name": v, "value": v})
		}
		return map[string]any{"type": "string", "enum": enum, "description": "command:" + mod + ":Logging"}
	}
	common := func(mod string) map[string]any {
		return map[string]any{
			"create":                 describe(str, "The command to run on create (and on update without `update`)."),
			"update":                 describe(str, "The command to run on update; `create` when absent."),
			"delete":                 describe(str, "The command to run on delete."),
			"stdin":                  describe(str, "Passed to the command's standard input."),
			"environment":            describe(strMap, "Additional environment variables."),
			"triggers":               map[string]any{"type": "array", "items": map[string]any{"$ref": "pulumi.json#/Any"}, "replaceOnChanges": true, "description": "A change of these values replaces the resource."},
			"logging":                describe(ref("command:"+mod+":Logging"), "Which of stdout and stderr are logged."),
			"addPreviousOutputInEnv": describe(boolean, "Set PULUMI_COMMAND_STDOUT and PULUMI_COMMAND_STDERR from the previous run."),
		}
	}
	withOut := func(in map[string]any) map[string]any {
		out := map[string]any{"stdout": describe(str, "The command's standard output."),
			"stderr": describe(str, "The command's standard error.")}
		for k, v := range in {
			out[k] = v
		}
		return out
	}
	local := common("local")
	local["dir"] = describe(str, "The working directory.")
	local["interpreter"] = describe(strList, "The program and arguments that run the command; default [\"/bin/sh\", \"-c\"].")
	local["assetPaths"] = describe(strList, "Not supported by this build.")
	local["archivePaths"] = describe(strList, "Not supported by this build.")
	remote := common("remote")
	remote["connection"] = map[string]any{"$ref": "#/types/command:remote:Connection", "secret": true}
	connProps := func(proxy bool) map[string]any {
		p := map[string]any{
			"host":               str,
			"port":               map[string]any{"type": "number", "default": 22},
			"user":               map[string]any{"type": "string", "default": "root"},
			"password":           secretStr,
			"privateKey":         secretStr,
			"privateKeyPassword": secretStr,
			"agentSocketPath":    str,
			"dialErrorLimit":     map[string]any{"type": "integer", "default": 10},
			"perDialTimeout":     map[string]any{"type": "integer", "default": 15},
			"hostKey":            str,
		}
		if !proxy {
			p["proxy"] = ref("command:remote:ProxyConnection")
		}
		return p
	}
	copyIn := map[string]any{
		"connection": map[string]any{"$ref": "#/types/command:remote:Connection", "secret": true},
		"source":     map[string]any{"$ref": "pulumi.json#/AssetOrArchive"},
		"remotePath": str,
		"triggers":   map[string]any{"type": "array", "items": map[string]any{"$ref": "pulumi.json#/Any"}, "replaceOnChanges": true},
	}
	runIn := map[string]any{
		"command": str, "stdin": str, "environment": strMap, "dir": str, "interpreter": strList,
		"logging": ref("command:local:Logging"), "addPreviousOutputInEnv": boolean,
		"assetPaths": strList, "archivePaths": strList,
	}
	spec := map[string]any{
		"name":        "command",
		"displayName": "Command",
		"version":     Version,
		"description": "Local and remote (SSH) commands: a pulumi-command 1.x compatible provider (phoenix toolchain build).",
		"meta":        map[string]any{"moduleFormat": "(.*)"},
		"config":      map[string]any{},
		"provider":    map[string]any{},
		"types": map[string]any{
			"command:local:Logging":  logging("local"),
			"command:remote:Logging": logging("remote"),
			"command:remote:Connection": map[string]any{"type": "object", "properties": connProps(false),
				"required": []string{"host"}},
			"command:remote:ProxyConnection": map[string]any{"type": "object", "properties": connProps(true),
				"required": []string{"host"}},
		},
		"resources": map[string]any{
			tokLocalCommand: map[string]any{"inputProperties": local, "properties": withOut(local),
				"required": []string{"stdout", "stderr"}},
			tokRemoteCommand: map[string]any{"inputProperties": remote, "properties": withOut(remote),
				"requiredInputs": []string{"connection"}, "required": []string{"connection", "stdout", "stderr"}},
			tokCopyToRemote: map[string]any{"inputProperties": copyIn, "properties": copyIn,
				"requiredInputs": []string{"connection", "source", "remotePath"},
				"required":       []string{"connection", "source", "remotePath"}},
		},
		"functions": map[string]any{
			tokLocalRun: map[string]any{
				"inputs":  map[string]any{"type": "object", "properties": runIn, "required": []string{"command"}},
				"outputs": map[string]any{"type": "object", "properties": withOut(runIn), "required": []string{"command", "stdout", "stderr"}},
			},
		},
	}
	b, err := json.Marshal(spec)
	if err != nil {
		panic(err)
	}
	return string(b)
}
