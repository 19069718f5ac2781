// Command pulumi-resource-command is a Pulumi resource provider plugin compatible with the
// `command:local:Command`, `command:remote:Command`, `command:remote:CopyToRemote` resources and
// the `command:local:run` invoke of pulumi-command 1.x, written against the plain provider gRPC
// interface of github.com/pulumi/pulumi/sdk/v3 (no pulumi-go-provider, no pulumi-command module):
// it builds from a Go module proxy that serves only sdk/v3 and golang.org/x/crypto. See README.md.
package main

import (
	"fmt"
	"os"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/provider"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

const providerName = "command"

// Version is what the pulumi_command 1.2.1 SDK asks the engine for. Override with
// -ldflags "-X main.Version=...".
var Version = "1.2.1"

func main() {
	err := provider.Main(providerName, func(host *provider.HostClient) (pulumirpc.ResourceProviderServer, error) {
		var logger hostLogger
		if host != nil {
			logger = host
		}
		return newProvider(logger), nil
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
