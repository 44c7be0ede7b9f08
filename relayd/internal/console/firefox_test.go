//go:build unix

package console_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// ---- headless Firefox, driven over WebDriver BiDi
//
// Firefox speaks WebDriver BiDi itself when started with
// --remote-debugging-port (no geckodriver): a session on
// ws://127.0.0.1:PORT/session, then browsingContext, script and input
// commands on the one tab.

// firefox is a driver for headless Firefox over WebDriver BiDi.
type firefox struct {
	*rpc
	ctx string // the tab's browsing context id
}

var bidiRe = regexp.MustCompile(`WebDriver BiDi listening on (ws://\S+)`)

// firefoxPrefs keep a test's Firefox off the network (the tests are
// loopback only) and quiet.
const firefoxPrefs = `
user_pref("app.normandy.enabled", false);
user_pref("app.update.disabledForTesting", true);
user_pref("browser.region.network.url", "");
user_pref("browser.safebrowsing.downloads.enabled", false);
user_pref("browser.safebrowsing.malware.enabled", false);
user_pref("browser.safebrowsing.phishing.enabled", false);
user_pref("browser.search.update", false);
user_pref("browser.shell.checkDefaultBrowser", false);
user_pref("datareporting.policy.dataSubmissionEnabled", false);
user_pref("extensions.update.enabled", false);
user_pref("messaging-system.rsexperimentloader.enabled", false);
user_pref("app.shield.optoutstudies.enabled", false);
user_pref("network.captive-portal-service.enabled", false);
user_pref("network.connectivity-service.enabled", false);
user_pref("services.settings.server", "http://127.0.0.1:9/");
user_pref("toolkit.telemetry.enabled", false);
`

// startFirefox runs headless Firefox with a fresh profile and opens a
// BiDi session on its tab.
func startFirefox(t *testing.T) driver {
	t.Helper()
	path := findBrowser("FIREFOX", "firefox-esr", "firefox")
	if path == "" {
		t.Skip("no Firefox found (looked for firefox-esr, firefox; FIREFOX sets the path): the console's Firefox tests are skipped — " +
			"install Debian's firefox-esr package (.ci/run does) to run them")
	}
	profile := t.TempDir()
	if err := os.WriteFile(filepath.Join(profile, "user.js"), []byte(firefoxPrefs), 0o644); err != nil {
		t.Fatal(err)
	}
	wsURL := launch(t, "Firefox", path, []string{"--headless", "--no-remote", "--profile", profile,
		"--remote-debugging-port=0", "--width=1440", "--height=900", "about:blank"}, bidiRe)
	f := &firefox{rpc: dialRPC(t, strings.TrimSuffix(wsURL, "/")+"/session", func(method string, _ json.RawMessage) bool {
		return method == "log.entryAdded"
	})}
	// Firefox answers session.new once its idle startup tasks are done
	// ("Waiting for initial application window" in its remote log): 15 s
	// on a quiet 2-core machine with Firefox 153, 25 s and more under load.
	if _, err := f.callWithin(3*patience, "session.new", map[string]any{"capabilities": map[string]any{}}); err != nil {
		t.Fatal(err)
	}
	// A tab of our own: the one a headless Firefox starts with never has
	// the focus (document.hasFocus() is false, nothing matches :focus and
	// Enter does not press the focused button); a new one has it.
	res, err := f.call("browsingContext.create", map[string]any{"type": "tab"})
	if err != nil {
		t.Fatal(err)
	}
	var tab struct {
		Context string `json:"context"`
	}
	if err := json.Unmarshal(res, &tab); err != nil || tab.Context == "" {
		t.Fatalf("Firefox opened no tab: %s (%v)", res, err)
	}
	f.ctx = tab.Context
	if _, err := f.call("session.subscribe", map[string]any{"events": []string{"log.entryAdded"}}); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *firefox) evaluate(expr string) (json.RawMessage, error) {
	res, err := f.call("script.evaluate", map[string]any{"expression": expr, "target": map[string]any{"context": f.ctx},
		"awaitPromise": true, "resultOwnership": "none", "serializationOptions": map[string]any{"maxObjectDepth": 16}})
	if err != nil {
		return nil, err
	}
	var r struct {
		Type    string          `json:"type"`
		Result  json.RawMessage `json:"result"`
		Details *struct {
			Text string `json:"text"`
		} `json:"exceptionDetails"`
	}
	if err := json.Unmarshal(res, &r); err != nil {
		return nil, err
	}
	if r.Type == "exception" {
		return nil, fmt.Errorf("exception: %s", r.Details.Text)
	}
	v, err := fromRemote(r.Result)
	if err != nil {
		return nil, err
	}
	return json.Marshal(v)
}

// fromRemote turns a BiDi RemoteValue (a typed, tagged form of a
// JavaScript value) into plain JSON values, as the DevTools protocol's
// returnByValue gives them. Nodes, functions and the like become {}.
func fromRemote(raw json.RawMessage) (any, error) {
	var rv struct {
		Type  string          `json:"type"`
		Value json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal(raw, &rv); err != nil {
		return nil, err
	}
	switch rv.Type {
	case "undefined", "null":
		return nil, nil
	case "string", "boolean", "date", "bigint":
		var v any
		err := json.Unmarshal(rv.Value, &v)
		return v, err
	case "number":
		var v any
		json.Unmarshal(rv.Value, &v)
		if _, special := v.(string); special { // NaN, -0, Infinity
			return nil, nil
		}
		return v, nil
	case "array", "set":
		var items []json.RawMessage
		json.Unmarshal(rv.Value, &items)
		out := make([]any, len(items))
		for i, it := range items {
			v, err := fromRemote(it)
			if err != nil {
				return nil, err
			}
			out[i] = v
		}
		return out, nil
	case "object", "map":
		var pairs [][2]json.RawMessage
		json.Unmarshal(rv.Value, &pairs)
		out := make(map[string]any, len(pairs))
		for _, kv := range pairs {
			var k string
			if json.Unmarshal(kv[0], &k) != nil {
				kv0, _ := fromRemote(kv[0])
				k = fmt.Sprint(kv0)
			}
			v, err := fromRemote(kv[1])
			if err != nil {
				return nil, err
			}
			out[k] = v
		}
		return out, nil
	}
	return map[string]any{}, nil
}

func (f *firefox) navigate(url string) error {
	_, err := f.call("browsingContext.navigate", map[string]any{"context": f.ctx, "url": url, "wait": "complete"})
	return err
}

// bidiKeys are WebDriver's codes of the keys press knows besides
// characters.
var bidiKeys = map[string]string{"Tab": "\uE004", "Enter": "\uE007", "Shift": "\uE008"}

func (f *firefox) press(key string) error {
	var seq []string
	if k, ok := strings.CutPrefix(key, "Shift+"); ok {
		seq, key = append(seq, bidiKeys["Shift"]), k
	}
	if code, ok := bidiKeys[key]; ok {
		key = code
	}
	seq = append(seq, key)
	var acts []map[string]any
	for _, k := range seq {
		acts = append(acts, map[string]any{"type": "keyDown", "value": k})
	}
	for i := len(seq) - 1; i >= 0; i-- {
		acts = append(acts, map[string]any{"type": "keyUp", "value": seq[i]})
	}
	_, err := f.call("input.performActions", map[string]any{"context": f.ctx,
		"actions": []any{map[string]any{"type": "key", "id": "keyboard", "actions": acts}}})
	return err
}

func (f *firefox) viewport(width, height int) error {
	_, err := f.call("browsingContext.setViewport", map[string]any{"context": f.ctx,
		"viewport": map[string]any{"width": width, "height": height}})
	return err
}

func (f *firefox) screenshot() ([]byte, error) {
	return pngOf(f.call("browsingContext.captureScreenshot", map[string]any{"context": f.ctx}))
}
