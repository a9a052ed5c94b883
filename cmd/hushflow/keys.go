package main

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/hushflow/hushflow/flows"
	"github.com/hushflow/hushflow/secrets"
	"github.com/spf13/cobra"
)

func newKeysCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Manage the master keys that encrypt secrets at rest",
		Long: `Manage the keyring (HUSHFLOW_MASTER_KEY or HUSHFLOW_MASTER_KEY_FILE) that
wraps every secret's data key. To rotate:

  1. hushflow keys generate --id k2            # prints k2:BASE64
  2. restart the server with HUSHFLOW_MASTER_KEY=k2:NEW,k1:OLD (new first)
  3. hushflow keys rotate                      # rewraps every data key under k2
  4. restart with HUSHFLOW_MASTER_KEY=k2:NEW   # the old key is retired`,
	}
	var id string
	gen := &cobra.Command{
		Use:   "generate",
		Short: "Print a fresh random key for HUSHFLOW_MASTER_KEY (nothing is sent or stored)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			k := secrets.NewKey()
			if id != "" {
				if _, err := secrets.ParseKeyring(id + ":" + k); err != nil {
					return usageErrorf("--id: %w", err)
				}
				k = id + ":" + k
			}
			fmt.Fprintln(cmd.OutOrStdout(), k)
			return nil
		},
	}
	gen.Flags().StringVar(&id, "id", "", "key id to prefix (id:BASE64), e.g. k2; the first entry of HUSHFLOW_MASTER_KEY is the primary")

	var batch, maxBatches int
	rotate := &cobra.Command{
		Use:   "rotate",
		Short: "Rewrap every data key under the primary master key (organization admins)",
		Long: `Rewrap every secret's data key under the server's primary master key (the
first entry of HUSHFLOW_MASTER_KEY), in batches. Ciphertexts and values are
not touched. Safe to run again: an interrupted rotation resumes. When it
reports 0 remaining, older keys can be removed from the keyring.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cmd.Flags().Changed("batch-size") && batch < 1 {
				return usageErrorf("--batch-size must be at least 1")
			}
			if cmd.Flags().Changed("max-batches") && maxBatches < 1 {
				return usageErrorf("--max-batches must be at least 1 (leave it out to go on until done)")
			}
			c, err := newClient()
			if err != nil {
				return err
			}
			body := map[string]int{}
			if batch > 0 {
				body["batch_size"] = batch
			}
			if maxBatches > 0 {
				body["max_batches"] = maxBatches
			}
			var res struct {
				secrets.RotateResult
				RunData *flows.SealedRewrap `json:"run_data"`
			}
			if err := c.do(cmd.Context(), "POST", "/api/v1/keys/rotate", body, &res); err != nil {
				return err
			}
			var from []string
			for k, n := range res.From {
				from = append(from, fmt.Sprintf("%d from %s", n, k))
			}
			sort.Strings(from)
			msg := fmt.Sprintf("rewrapped %d data keys under key %s in %d batches", res.Rewrapped, res.Primary, res.Batches)
			if len(from) > 0 {
				msg += " (" + strings.Join(from, ", ") + ")"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s; %d remaining\n", msg, res.Remaining)
			if res.Remaining > 0 || res.RunData == nil {
				fmt.Fprintln(cmd.OutOrStdout(), "the run data sealed under the keyring (checkpoints of open runs, inputs kept for reruns) is rewrapped once every secret is: run it again")
				return nil
			}
			rd := res.RunData
			fmt.Fprintf(cmd.OutOrStdout(), "rewrapped %d checkpoints of open runs and %d sealed run inputs; %d remaining\n", rd.Checkpoints, rd.Inputs, rd.Remaining)
			for _, e := range rd.Errors {
				fmt.Fprintf(cmd.OutOrStdout(), "  not rewrapped: %s\n", e)
			}
			if rd.Remaining == 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "every data key is wrapped by %s: older keys can be removed from the keyring\n", res.Primary)
			}
			return nil
		},
	}
	rotate.Flags().IntVar(&batch, "batch-size", 0, fmt.Sprintf("data keys per transaction (default %d)", secrets.DefaultRotateBatch))
	rotate.Flags().IntVar(&maxBatches, "max-batches", 0, "stop after this many batches (default: until done)")

	var statusFormat *outputFormat
	status := &cobra.Command{
		Use:   "status",
		Short: "Show the server's key ids and how many secret versions each wraps (organization admins)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			raw, done, err := getAPI(cmd, "/api/v1/keys", statusFormat)
			if done || err != nil {
				return err
			}
			var out struct {
				Primary  string           `json:"primary"`
				Keys     []string         `json:"keys"`
				Usage    map[string]int64 `json:"versions_by_key"`
				Warnings []string         `json:"warnings"`
				RunData  *int64           `json:"run_data_not_under_primary"`
			}
			if err := json.Unmarshal(raw, &out); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "primary key: %s\nkeyring: %s\n", out.Primary, strings.Join(out.Keys, ", "))
			ids := make([]string, 0, len(out.Usage))
			for id := range out.Usage {
				ids = append(ids, id)
			}
			sort.Strings(ids)
			for _, id := range ids {
				fmt.Fprintf(cmd.OutOrStdout(), "  %s wraps %d secret versions\n", id, out.Usage[id])
			}
			if out.RunData != nil {
				fmt.Fprintf(cmd.OutOrStdout(), "sealed run data not under %s yet (checkpoints of open runs, inputs kept for reruns): %d\n", out.Primary, *out.RunData)
			}
			for _, w := range out.Warnings {
				fmt.Fprintln(cmd.ErrOrStderr(), "warning: "+w)
			}
			return nil
		},
	}
	statusFormat = addOutput(status)
	cmd.AddCommand(gen, rotate, status)
	return cmd
}
