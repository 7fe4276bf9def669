package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ssfd/ssfd/internal/keys"
	"github.com/ssfd/ssfd/internal/server"
	"github.com/ssfd/ssfd/issuer"
)

func newClientCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "client",
		Short: "Register, list, show, disable and enable clients (agents and services) of the built-in token issuer",
	}
	cmd.AddCommand(newClientCreateCommand(), clientGetCommand("list", "List every client", 0),
		clientGetCommand("get CLIENT_ID", "Show one client", 1), clientSwitchCommand("disable", true),
		clientSwitchCommand("enable", false))
	return cmd
}

func newClientCreateCommand() *cobra.Command {
	var (
		cf        clientFlags
		req       issuer.ClientRequest
		ttl       time.Duration
		jwksFile  string
		secretOut string
	)
	cmd := &cobra.Command{
		Use:   "create --id CLIENT_ID --tenant TENANT [flags]",
		Short: "Register a client; a secret-based client's secret is printed this once only",
		Example: "  ssfd client create --id spiffe://example.org/tenant/acme/agent/invoice-bot --tenant acme \\\n" +
			"    --scope invoices.read --resource https://tools.example.org/mcp --grant client_credentials --grant " + issuer.GrantTokenExchange,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			req.TokenTTL = issuer.Seconds(ttl / time.Second)
			if jwksFile != "" {
				data, err := os.ReadFile(jwksFile)
				if err != nil {
					return err
				}
				req.JWKS = json.RawMessage(data)
			}
			body, _ := json.Marshal(req)
			out, err := cf.call(cmd, http.MethodPost, issuer.PathClients, bytes.NewReader(body))
			if err != nil || secretOut == "" {
				if err == nil {
					_, err = cmd.OutOrStdout().Write(out)
				}
				return err
			}
			return writeSecret(cmd, out, secretOut)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&secretOut, "secret-out", "", "write the client secret to this file (mode 0600) instead of printing it")
	fl.StringVar(&req.ID, "id", "", "client_id: a SPIFFE ID for agents, a plain id for services")
	fl.StringVar(&req.Tenant, "tenant", "", "tenant of the client")
	fl.StringVar(&req.Name, "name", "", "label for people")
	fl.StringVar(&req.Class, "class", "", "agent class (blueprint), for class-wide kill switches")
	fl.StringSliceVar(&req.GrantTypes, "grant", nil, "allowed grant (repeatable; default client_credentials)")
	fl.StringSliceVar(&req.Scopes, "scope", nil, "the most its tokens may carry (repeatable)")
	fl.StringSliceVar(&req.Resources, "resource", nil, "an audience its tokens may name (repeatable)")
	fl.StringSliceVar(&req.Actors, "actor", nil, "a client that may act for it, exchanging tokens addressed to it (repeatable)")
	fl.IntVar(&req.MaxDelegationDepth, "max-depth", 0, "deepest delegation it may act in (default: the issuer's, at most 6)")
	fl.DurationVar(&ttl, "ttl", 0, "cap on its access tokens' life (at most 15m)")
	fl.StringVar(&req.AuthMethod, "auth-method", "", "private_key_jwt, client_secret_basic (default) or client_secret_post")
	fl.StringVar(&jwksFile, "jwks-file", "", "JWK Set of its public keys (private_key_jwt)")
	fl.BoolVar(&req.Introspection, "introspect", false, "may call the introspection endpoint (resource servers), for tokens of its tenant")
	cf.register(cmd)
	return cmd
}

// writeSecret moves the secret of a registration answer into a file and prints the rest.
func writeSecret(cmd *cobra.Command, answer []byte, path string) error {
	var reg issuer.Registered
	if err := json.Unmarshal(answer, &reg); err != nil {
		return fmt.Errorf("the answer is not a registration: %w", err)
	}
	if reg.Secret == "" {
		return errors.New("the client has no secret (private_key_jwt); --secret-out does not apply")
	}
	if err := os.WriteFile(path, []byte(reg.Secret+"\n"), 0o600); err != nil {
		return err
	}
	reg.Secret = ""
	out, _ := json.MarshalIndent(reg, "", "  ")
	_, err := fmt.Fprintf(cmd.OutOrStdout(), "%s\n", out)
	return err
}

func clientGetCommand(use, short string, nargs int) *cobra.Command {
	var cf clientFlags
	cmd := &cobra.Command{
		Use: use, Short: short, Args: cobra.ExactArgs(nargs),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := issuer.PathClients
			if nargs == 1 {
				path += "/" + url.PathEscape(args[0])
			}
			return cf.print(cmd, http.MethodGet, path, nil)
		},
	}
	cf.register(cmd)
	return cmd
}

func clientSwitchCommand(verb string, disabled bool) *cobra.Command {
	var cf clientFlags
	cmd := &cobra.Command{
		Use:   verb + " CLIENT_ID",
		Short: strings.ToUpper(verb[:1]) + verb[1:] + " new tokens for a client (tokens it holds stay valid until revoked or expired)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			body, _ := json.Marshal(map[string]bool{"disabled": disabled})
			return cf.print(cmd, http.MethodPatch, issuer.PathClients+"/"+url.PathEscape(args[0]), bytes.NewReader(body))
		},
	}
	cf.register(cmd)
	return cmd
}

// print calls the API and writes the indented answer.
func (f *clientFlags) print(cmd *cobra.Command, method, path string, body io.Reader) error {
	out, err := f.call(cmd, method, path, body)
	if err != nil {
		return err
	}
	_, err = cmd.OutOrStdout().Write(out)
	return err
}

func newSessionsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sessions",
		Short: "Open human sessions for agents and show session/delegation trees",
	}
	cmd.AddCommand(newSessionsCreateCommand(), newSessionsTreeCommand())
	return cmd
}

func newSessionsCreateCommand() *cobra.Command {
	var (
		cf       clientFlags
		req      issuer.SessionRequest
		ttl      time.Duration
		tokenOut string
	)
	cmd := &cobra.Command{
		Use:   "create --user-iss ISS --user-sub SUB --agent CLIENT_ID --scope S --resource R",
		Short: "Open a human root session for an agent; prints the token the agent exchanges for its first delegated token",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			req.TTL = issuer.Seconds(ttl / time.Second)
			body, _ := json.Marshal(req)
			out, err := cf.call(cmd, http.MethodPost, issuer.PathSessions, bytes.NewReader(body))
			if err != nil {
				return err
			}
			if tokenOut != "" {
				var s issuer.Session
				if err := json.Unmarshal(out, &s); err != nil || s.Token == nil {
					return fmt.Errorf("the answer is not a session: %s", out)
				}
				if err := os.WriteFile(tokenOut, []byte(s.Token.AccessToken+"\n"), 0o600); err != nil {
					return err
				}
			}
			_, err = cmd.OutOrStdout().Write(out)
			return err
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&tokenOut, "token-out", "", "also write the agent's token to this file (mode 0600)")
	fl.StringVar(&req.User.Issuer, "user-iss", "", "the user's identity provider (issuer URL)")
	fl.StringVar(&req.User.Subject, "user-sub", "", "the user's subject at that provider")
	fl.StringVar(&req.Agent, "agent", "", "client_id of the agent acting for the user")
	fl.StringSliceVar(&req.Scopes, "scope", nil, "scope ceiling of the whole tree (repeatable)")
	fl.StringSliceVar(&req.Resources, "resource", nil, "resource ceiling of the whole tree (repeatable)")
	fl.IntVar(&req.MaxDepth, "max-depth", 0, "delegation depth cap of the tree (default: the issuer's)")
	fl.DurationVar(&ttl, "ttl", 0, "session life (default: the issuer's session_ttl)")
	fl.StringVar(&req.ACR, "acr", "", "how the user authenticated (acr), copied into every token")
	cf.register(cmd)
	return cmd
}

func newSessionsTreeCommand() *cobra.Command {
	var (
		cf     clientFlags
		root   string
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "tree --root SID",
		Short: "Show a session node and everything delegated below it",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if root == "" {
				return errors.New("--root is required")
			}
			out, err := cf.call(cmd, http.MethodGet, issuer.PathSessions+"/"+url.PathEscape(root), nil)
			if err != nil {
				return err
			}
			if asJSON {
				_, err = cmd.OutOrStdout().Write(out)
				return err
			}
			var doc struct {
				Nodes []*issuer.Node `json:"nodes"`
			}
			if err := json.Unmarshal(out, &doc); err != nil {
				return err
			}
			return printTree(cmd.OutOrStdout(), doc.Nodes)
		},
	}
	cmd.Flags().StringVar(&root, "root", "", "sid of the node to start from")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the nodes as JSON")
	cf.register(cmd)
	return cmd
}

// printTree writes nodes (parents before children) as an indented tree.
func printTree(w io.Writer, nodes []*issuer.Node) error {
	depth := map[string]int{}
	for _, n := range nodes {
		level := 0
		if d, ok := depth[n.Parent]; ok {
			level = d + 1
		}
		depth[n.ID] = level
		state := "active"
		switch {
		case !n.RevokedAt.IsZero():
			state = "revoked " + n.RevokedAt.UTC().Format(time.RFC3339)
		case !time.Now().Before(n.ExpiresAt):
			state = "expired"
		}
		who := n.ClientID
		if n.Kind == issuer.NodeUser {
			who = n.Principal.Subject + " @ " + n.Principal.Issuer + " for " + n.ClientID
		}
		if _, err := fmt.Fprintf(w, "%s%s  %s  depth %d/%d  %s  [%s]\n", strings.Repeat("  ", level), n.ID, n.Kind,
			n.Depth, n.MaxDepth, who, state); err != nil {
			return err
		}
	}
	return nil
}

func newRevokeCommand() *cobra.Command {
	var (
		cf   clientFlags
		req  issuer.RevocationRequest
		user []string
	)
	cmd := &cobra.Command{
		Use:   "revoke (--jti JTI | --sid SID | --client ID | --agent ID | --tenant T | --user ISS SUB | --class C | --kid KID)",
		Short: "Revoke a token, a session node and its subtree, or everything issued so far for a user, client, agent, tenant, class or key",
		Long: "Each revocation is recorded by the issuer, makes introspection answer inactive, and goes out as a CAEP\n" +
			"session-revoked event to every stream that asked for it. --disable also refuses new tokens for the target.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if req.User, err = userFlag(user); err != nil {
				return err
			}
			if _, err := req.Target(); err != nil {
				var oe *issuer.Error
				if errors.As(err, &oe) {
					return errors.New(oe.Description)
				}
				return err
			}
			body, _ := json.Marshal(req)
			return cf.print(cmd, http.MethodPost, issuer.PathRevocations, bytes.NewReader(body))
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&req.JTI, "jti", "", "one access token")
	fl.StringVar(&req.SID, "sid", "", "a session node and everything delegated below it")
	fl.StringVar(&req.Client, "client", "", "every token issued to a client")
	fl.StringVar(&req.Agent, "agent", "", "every token an agent holds or delegated (its SPIFFE ID)")
	fl.StringVar(&req.Tenant, "tenant", "", "every token of a tenant")
	fl.StringSliceVar(&user, "user", nil, "every token of a human: ISS,SUB")
	fl.StringVar(&req.Class, "class", "", "every token of an agent class")
	fl.StringVar(&req.KeyID, "kid", "", "every token signed by an access-token key")
	fl.StringVar(&req.Reason, "reason", "", "why, for logs and the CAEP event's reason_admin")
	fl.BoolVar(&req.Disable, "disable", false, "also refuse new tokens for the target (kill switch)")
	cf.register(cmd)
	return cmd
}

// userFlag reads --user ISS,SUB (or --user ISS --user SUB) into a principal; nil when it was not given.
func userFlag(user []string) (*issuer.Principal, error) {
	switch len(user) {
	case 0:
		return nil, nil
	case 2:
		return &issuer.Principal{Issuer: user[0], Subject: user[1]}, nil
	}
	return nil, errors.New("--user takes the issuer and the subject: --user ISS,SUB")
}

func newTokenCommand() *cobra.Command {
	var (
		url0, clientID, secret, secretFile, keyFile, dpopKeyFile string
		grant, subject, subjectFile, refresh, scope              string
		resources                                                []string
		show                                                     string
		timeout                                                  time.Duration
	)
	cmd := &cobra.Command{
		Use:   "token --client-id ID (--client-secret S | --client-secret-file F | --key-file F) [flags]",
		Short: "Get an access token from the built-in issuer: client credentials, token exchange or refresh",
		Example: "  ssfd token --client-id receiver-a --client-secret-file secret --resource http://127.0.0.1:8080\n" +
			"  ssfd token --client-id $AGENT_B --client-secret-file b.secret --grant exchange --subject-token-file a.token \\\n" +
			"    --resource https://tools.example.org/mcp --scope invoices.read --show claims",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			endpoint := strings.TrimSuffix(url0, "/") + issuer.PathToken
			form := url.Values{}
			switch grant {
			case "client_credentials", "cc":
				form.Set("grant_type", issuer.GrantClientCredentials)
			case "exchange", "token-exchange", issuer.GrantTokenExchange:
				tok, err := valueOrFile(subject, subjectFile, "--subject-token")
				if err != nil {
					return err
				}
				form.Set("grant_type", issuer.GrantTokenExchange)
				form.Set("subject_token", tok)
				form.Set("subject_token_type", issuer.TokenTypeAccessToken)
			case "refresh", "refresh_token":
				form.Set("grant_type", issuer.GrantRefreshToken)
				form.Set("refresh_token", refresh)
			default:
				return fmt.Errorf("--grant %q is not client_credentials, exchange or refresh", grant)
			}
			form["resource"] = resources
			if scope != "" {
				form.Set("scope", scope)
			}
			req, err := tokenRequest(cmd, endpoint, form, clientID, secret, secretFile, keyFile, dpopKeyFile)
			if err != nil {
				return err
			}
			resp, err := (&http.Client{Timeout: timeout}).Do(req)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			if err != nil {
				return err
			}
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(data)))
			}
			return printToken(cmd.OutOrStdout(), data, show)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&url0, "url", envOr("SSFD_URL", "http://127.0.0.1:8080"), "issuer URL (env SSFD_URL)")
	fl.StringVar(&clientID, "client-id", "", "client_id")
	fl.StringVar(&secret, "client-secret", "", "client secret (client_secret_basic)")
	fl.StringVar(&secretFile, "client-secret-file", "", "file holding the client secret")
	fl.StringVar(&keyFile, "key-file", "", "private JWK or PEM of a private_key_jwt client: signs the client assertion")
	fl.StringVar(&dpopKeyFile, "dpop-key-file", "", "private JWK or PEM (ES256 or Ed25519) to bind the token with DPoP")
	fl.StringVar(&grant, "grant", "client_credentials", "client_credentials, exchange or refresh")
	fl.StringVar(&subject, "subject-token", "", "token to exchange (grant exchange)")
	fl.StringVar(&subjectFile, "subject-token-file", "", "file holding the token to exchange")
	fl.StringVar(&refresh, "refresh-token", "", "refresh token (grant refresh)")
	fl.StringSliceVar(&resources, "resource", nil, "audience of the token (repeatable: an exchange for several also returns a refresh token)")
	fl.StringVar(&scope, "scope", "", "space-separated scopes")
	fl.StringVar(&show, "show", "token", "token (the access token alone), claims (decoded, unverified) or json (the whole answer)")
	fl.DurationVar(&timeout, "timeout", 30*time.Second, "timeout of the request")
	return cmd
}

func valueOrFile(value, file, flag string) (string, error) {
	switch {
	case value != "" && file != "":
		return "", fmt.Errorf("give %s or %s-file, not both", flag, flag)
	case file != "":
		data, err := os.ReadFile(file)
		return strings.TrimSpace(string(data)), err
	case value == "":
		return "", fmt.Errorf("%s or %s-file is required", flag, flag)
	}
	return value, nil
}

// tokenRequest builds the token request with the client's authentication and, when asked, a DPoP proof.
func tokenRequest(cmd *cobra.Command, endpoint string, form url.Values, clientID, secret, secretFile, keyFile, dpopKeyFile string) (*http.Request, error) {
	if clientID == "" {
		return nil, errors.New("--client-id is required")
	}
	basic := ""
	if keyFile != "" {
		k, err := keys.ReadKeyFile(keyFile)
		if err != nil {
			return nil, err
		}
		now := time.Now()
		claims, _ := json.Marshal(map[string]any{"iss": clientID, "sub": clientID, "aud": endpoint, "iat": now.Unix(),
			"exp": now.Add(time.Minute).Unix(), "jti": fmt.Sprintf("%d", now.UnixNano())})
		s, err := keys.NewSigner(k)
		if err != nil {
			return nil, err
		}
		assertion, err := s.Sign(claims, "JWT")
		if err != nil {
			return nil, err
		}
		form.Set("client_assertion_type", issuer.AssertionTypeJWTBearer)
		form.Set("client_assertion", assertion)
	} else {
		v, err := valueOrFile(secret, secretFile, "--client-secret")
		if err != nil {
			return nil, err
		}
		basic = v
	}
	req, err := http.NewRequestWithContext(cmd.Context(), http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basic != "" {
		req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(basic))
	}
	if dpopKeyFile != "" {
		k, err := keys.ReadKeyFile(dpopKeyFile)
		if err != nil {
			return nil, err
		}
		claims, _ := json.Marshal(map[string]any{"jti": fmt.Sprintf("%d", time.Now().UnixNano()), "htm": http.MethodPost,
			"htu": endpoint, "iat": time.Now().Unix()})
		proof, err := keys.SignWithJWK(k, claims, keys.TypeDPoP)
		if err != nil {
			return nil, err
		}
		req.Header.Set("DPoP", proof)
	}
	return req, nil
}

// printToken writes the answer as asked: the access token, its decoded claims, or the whole JSON.
func printToken(w io.Writer, data []byte, show string) error {
	var resp issuer.TokenResponse
	if err := json.Unmarshal(data, &resp); err != nil {
		return fmt.Errorf("the answer is not a token response: %w", err)
	}
	switch show {
	case "token":
		_, err := fmt.Fprintln(w, resp.AccessToken)
		return err
	case "claims":
		_, payload, err := keys.Decode(resp.AccessToken)
		if err != nil {
			return err
		}
		var buf bytes.Buffer
		if err := json.Indent(&buf, payload, "", "  "); err != nil {
			return err
		}
		_, err = fmt.Fprintln(w, buf.String())
		return err
	case "json":
		var buf bytes.Buffer
		if err := json.Indent(&buf, data, "", "  "); err != nil {
			return err
		}
		_, err := fmt.Fprintln(w, buf.String())
		return err
	}
	return fmt.Errorf("--show %q is not token, claims or json", show)
}

func newKillSwitchCommand() *cobra.Command {
	var (
		cf     clientFlags
		req    server.KillSwitchRequest
		user   []string
		wait   time.Duration
		expect int
	)
	cmd := &cobra.Command{
		Use:   "killswitch (--agent ID | --client ID | --tenant T | --user ISS,SUB | --class C | --session SID | --kid KID)",
		Short: "Pull a kill switch: revoke everything of the target now, refuse new tokens, and tell every resource server",
		Long: "The issuer records the revocation (and, except for --session and --kid, refuses new tokens for the target),\n" +
			"NATS carries it to every resource server's index, and CAEP session-revoked SETs carry it to every stream.\n" +
			"With --wait, the command waits for resource servers to acknowledge and prints how many did and how long it took.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if req.User, err = userFlag(user); err != nil {
				return err
			}
			if wait > 0 {
				req.Wait, req.Expect = wait.String(), expect
			}
			body, _ := json.Marshal(req)
			out, err := cf.call(cmd, http.MethodPost, server.PathKillSwitch, bytes.NewReader(body))
			if err != nil {
				return err
			}
			var resp server.KillSwitchResponse
			if err := json.Unmarshal(out, &resp); err != nil {
				return fmt.Errorf("the answer is not a kill-switch answer: %w", err)
			}
			for _, op := range resp.Ops {
				fmt.Fprintf(cmd.OutOrStdout(), "%s %s %s%s recorded at %s\n", op.ID, op.Kind, op.Key.String(), op.SID,
					op.At.Format(time.RFC3339))
			}
			if wait > 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "acknowledged by %d resource server(s) after %.1f ms\n", resp.Acknowledged, resp.Waited)
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&req.Agent, "agent", "", "an agent (SPIFFE ID): every token it holds or delegated")
	fl.StringVar(&req.Client, "client", "", "every token issued to a client")
	fl.StringVar(&req.Tenant, "tenant", "", "every token of a tenant")
	fl.StringSliceVar(&user, "user", nil, "every token of a human: ISS,SUB")
	fl.StringVar(&req.Class, "class", "", "every token of an agent class")
	fl.StringVar(&req.Session, "session", "", "one session node and everything delegated below it")
	fl.StringVar(&req.KeyID, "kid", "", "every token signed by an access-token key (the issuer rotates at once)")
	fl.StringVar(&req.Reason, "reason", "", "why, for logs and the CAEP event's reason_admin")
	fl.DurationVar(&wait, "wait", 0, "wait up to this long for resource servers to acknowledge (at most 1m)")
	fl.IntVar(&expect, "expect", 0, "with --wait, stop waiting once this many resource servers acknowledged (0: wait the whole time)")
	cf.register(cmd)
	return cmd
}
