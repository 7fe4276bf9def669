package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/spf13/cobra"
)

func newDeadLettersCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dead-letters",
		Short: "List, inspect, redrive and purge a stream's dead letters on an ssfd transmitter",
		Long: "Dead letters are SETs a receiver refused for good (push 400 with a permanent RFC 8935 code, poll\n" +
			"setErrs) or that were retried longer than push_max_age. Fix the cause, then redrive them.",
	}
	cmd.AddCommand(
		deadLettersCommand("list STREAM_ID", "List the dead letters of a stream", http.MethodGet, "", false),
		deadLettersCommand("show STREAM_ID JTI", "Show one dead letter with its SET", http.MethodGet, "", true),
		deadLettersCommand("redrive STREAM_ID [JTI...]", "Queue dead letters again (all when no jti is given)", http.MethodPost, "/redrive", false),
		deadLettersCommand("purge STREAM_ID [JTI...]", "Delete dead letters (all when no jti is given)", http.MethodDelete, "", false),
	)
	return cmd
}

func deadLettersCommand(use, short, method, suffix string, one bool) *cobra.Command {
	var cf clientFlags
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := "/api/v1/streams/" + url.PathEscape(args[0]) + "/dead-letters" + suffix
			var body io.Reader
			switch {
			case one && len(args) != 2:
				return fmt.Errorf("show takes a stream ID and a jti")
			case one:
				path += "/" + url.PathEscape(args[1])
			case method == http.MethodPost:
				raw, _ := json.Marshal(map[string][]string{"jtis": args[1:]})
				body = bytes.NewReader(raw)
			case method == http.MethodDelete && len(args) > 1:
				q := url.Values{"jti": args[1:]}
				path += "?" + q.Encode()
			}
			out, err := cf.call(cmd, method, path, body)
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(out)
			return err
		},
	}
	cf.register(cmd)
	return cmd
}

// call sends one request to the ssfd API at the host of --url and returns the indented JSON answer.
func (f *clientFlags) call(cmd *cobra.Command, method, path string, body io.Reader) ([]byte, error) {
	tok, err := f.bearer()
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(f.url)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("--url %q is not a URL", f.url)
	}
	u.Path, u.RawQuery = "", ""
	req, err := http.NewRequestWithContext(cmd.Context(), method, strings.TrimSuffix(u.String(), "/")+path, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := f.httpClient().Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if resp.StatusCode >= 300 {
		return nil, &exitError{code: 1, err: fmt.Errorf("transmitter answered %s: %s", resp.Status, bytes.TrimSpace(out))}
	}
	var pretty bytes.Buffer
	if json.Indent(&pretty, out, "", "  ") == nil {
		out = append(pretty.Bytes(), '\n')
	}
	return out, nil
}
