package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/hushflow/hushflow/internal/buildinfo"
	"github.com/spf13/cobra"
)

// versionTimeout bounds the question to the server: version answers
// quickly even when the address leads nowhere.
const versionTimeout = 5 * time.Second

func newVersionCmd() *cobra.Command {
	var addr string
	cmd := &cobra.Command{
		Use:   "version [--addr ADDR]",
		Short: "Print the version of hushflow, its Go version, and the server's version",
		Long: `Print this binary's version, VCS revision and Go version, then the version of
the server at --addr (default HUSHFLOW_ADDR, else 127.0.0.1:8080) when it
answers: "server: unreachable" when it does not. The exit status is 0
either way. The server tells its version to a valid HUSHFLOW_TOKEN only.
hushflow --version prints the same.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return printVersion(cmd.Context(), cmd.OutOrStdout(), addr)
		},
	}
	cmd.Flags().StringVar(&addr, "addr", envOr("HUSHFLOW_ADDR", defaultAddr), "server address, host:port or a URL (default HUSHFLOW_ADDR)")
	return cmd
}

// printVersion prints the client's build and the server's at addr.
func printVersion(ctx context.Context, w io.Writer, addr string) error {
	bi := buildinfo.Get()
	fmt.Fprintf(w, "version: %s\n", bi.Version)
	if bi.Revision != "" {
		fmt.Fprintf(w, "revision: %s\n", revision(bi))
	}
	fmt.Fprintf(w, "go: %s %s\n", bi.Go, bi.Platform)
	fmt.Fprintf(w, "server: %s\n", serverVersion(ctx, addr))
	return nil
}

func revision(bi buildinfo.Info) string {
	if bi.Modified {
		return bi.Revision + " (modified)"
	}
	return bi.Revision
}

// serverVersion describes the server at addr in one line, or why it
// cannot be told.
func serverVersion(ctx context.Context, addr string) string {
	base := baseURL(addr)
	// Without a token the request still tells whether the server answers.
	c := &client{base: base, token: os.Getenv("HUSHFLOW_TOKEN"), http: &http.Client{}}
	ctx, cancel := context.WithTimeout(ctx, versionTimeout)
	defer cancel()
	var bi buildinfo.Info
	err := c.do(ctx, "GET", "/api/v1/version", nil, &bi)
	var ue *unreachableError
	var ae *apiError
	switch {
	case errors.As(err, &ue):
		return fmt.Sprintf("unreachable (%s): %v", base, ue.err)
	case c.token == "" && errors.As(err, &ae) && ae.Status == http.StatusUnauthorized:
		return fmt.Sprintf("unknown (%s): it answers, and tells its version to a valid token only: HUSHFLOW_TOKEN is not set", base)
	case errors.As(err, &ae) && ae.Status == http.StatusNotFound:
		return fmt.Sprintf("unknown (%s): it does not tell its version (HTTP 404: a worker-only replica, or a server older than GET /api/v1/version)", base)
	case err != nil:
		return fmt.Sprintf("unknown (%s): %v", base, err)
	}
	s := bi.Version
	if bi.Revision != "" {
		s += ", revision " + revision(bi)
	}
	return fmt.Sprintf("%s, %s %s (%s)", s, bi.Go, bi.Platform, base)
}
