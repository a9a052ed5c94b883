package main

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

func newTokenCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "token", Short: "Manage API tokens"}
	var name, expires, user string
	create := &cobra.Command{
		Use:   "create --name NAME",
		Short: "Create an API token (printed once)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if name == "" {
				return usageErrorf("--name is required: a name to recognize the token by")
			}
			c, err := newClient()
			if err != nil {
				return err
			}
			path := "/api/v1/tokens"
			if user != "" {
				path = "/api/v1/users/" + user + "/tokens"
			}
			var out struct {
				ID        string     `json:"id"`
				Token     string     `json:"token"`
				ExpiresAt *time.Time `json:"expires_at"`
			}
			if err := c.do(cmd.Context(), "POST", path, map[string]string{"name": name, "expires_in": expires}, &out); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), out.Token)
			msg := "token " + out.ID + " created; it is shown only this once"
			if out.ExpiresAt != nil {
				msg += "; expires " + out.ExpiresAt.Format(time.RFC3339)
			}
			fmt.Fprintln(cmd.ErrOrStderr(), msg)
			return nil
		},
	}
	create.Flags().StringVar(&name, "name", "", "a name to recognize the token by (required)")
	create.Flags().StringVar(&expires, "expires-in", "", "lifetime such as 720h (default: no expiry)")
	create.Flags().StringVar(&user, "user", "", "user id to create the token for (admins only; default: yourself)")

	list := &cobra.Command{
		Use:   "list",
		Short: "List your tokens (never their values)",
		Args:  cobra.NoArgs,
	}
	listFormat := addOutput(list)
	list.RunE = func(cmd *cobra.Command, _ []string) error {
		raw, done, err := getAPI(cmd, "/api/v1/tokens", listFormat)
		if done || err != nil {
			return err
		}
		var out struct {
			Tokens []struct {
				ID         string     `json:"id"`
				Name       string     `json:"name"`
				CreatedAt  time.Time  `json:"created_at"`
				LastUsedAt *time.Time `json:"last_used_at"`
				ExpiresAt  *time.Time `json:"expires_at"`
				RevokedAt  *time.Time `json:"revoked_at"`
			} `json:"tokens"`
		}
		if err := json.Unmarshal(raw, &out); err != nil {
			return err
		}
		w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "ID\tNAME\tCREATED\tLAST USED\tEXPIRES\tSTATUS")
		for _, t := range out.Tokens {
			status := "active"
			if t.RevokedAt != nil {
				status = "revoked"
			} else if t.ExpiresAt != nil && time.Now().After(*t.ExpiresAt) {
				status = "expired"
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Name, t.CreatedAt.Format(time.RFC3339),
				fmtTime(t.LastUsedAt), fmtTime(t.ExpiresAt), status)
		}
		return w.Flush()
	}
	revoke := &cobra.Command{
		Use:        "revoke ID",
		Short:      "Revoke a token",
		SuggestFor: []string{"delete", "remove", "rm"},
		Args:       cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newClient()
			if err != nil {
				return err
			}
			if err := c.do(cmd.Context(), "DELETE", "/api/v1/tokens/"+args[0], nil, nil); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "revoked", args[0])
			return nil
		},
	}
	cmd.AddCommand(create, list, revoke)
	return cmd
}

func fmtTime(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.Format(time.RFC3339)
}
