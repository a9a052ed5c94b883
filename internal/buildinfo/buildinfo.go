// Package buildinfo says which build of Hushflow is running: its version,
// VCS revision and Go version, for `hushflow version` and the API's
// GET /api/v1/version.
package buildinfo

import (
	"runtime"
	"runtime/debug"
)

// version is set at build time, for a release:
//
//	go build -ldflags "-X github.com/hushflow/hushflow/internal/buildinfo.version=v1.4.0" ./cmd/hushflow
//
// Without it, Get uses the module version Go stamped into the binary, or
// "dev".
var version string

// Info describes a build.
type Info struct {
	// Version is the -ldflags version, else the main module's version
	// (a pseudo-version such as v0.0.0-20260102150405-1f22e6f0c1d2 when
	// built from a git checkout), else "dev".
	Version string `json:"version"`
	// Revision is the VCS commit the binary was built from, when Go
	// recorded it (go build in a git checkout; not go run or go test).
	Revision string `json:"revision,omitempty"`
	// Modified says that the checkout had uncommitted changes.
	Modified bool `json:"modified,omitempty"`
	// Go is the Go version the binary was built with.
	Go string `json:"go"`
	// Platform is GOOS/GOARCH.
	Platform string `json:"platform"`
}

// Get returns the running binary's build information.
func Get() Info {
	i := Info{Version: version, Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	bi, ok := debug.ReadBuildInfo()
	if ok {
		if i.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			i.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				i.Revision = s.Value
			case "vcs.modified":
				i.Modified = s.Value == "true"
			}
		}
	}
	if i.Version == "" {
		i.Version = "dev"
	}
	return i
}
