//go:build unix

package console_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/claude-relay/claude-relay/internal/testkit"
)

// ---- headless Chromium, driven over the DevTools protocol

// chromium is a driver for headless Chromium over the DevTools protocol.
type chromium struct{ *rpc }

var devtoolsRe = regexp.MustCompile(`DevTools listening on (ws://\S+)`)

// startChromium runs headless Chromium and attaches to its page.
func startChromium(t *testing.T) driver {
	t.Helper()
	path := findBrowser("CHROMIUM", "chromium", "chromium-browser", "google-chrome", "headless_shell")
	if path == "" {
		t.Skip("no Chromium found (looked for chromium, chromium-browser, google-chrome, headless_shell; CHROMIUM sets the path): " +
			"the console's browser tests are skipped — install Debian's chromium package (.ci/run does) to run them")
	}
	wsURL := launch(t, "Chromium", path, []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--no-first-run", "--no-default-browser-check", "--disable-extensions", "--disable-background-networking",
		"--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0", "--window-size=1440,900",
		"--user-data-dir=" + t.TempDir(), "about:blank"}, devtoolsRe)
	// The page target: /json/list on the same port.
	hostport := strings.SplitN(strings.TrimPrefix(wsURL, "ws://"), "/", 2)[0]
	var pageWS string
	testkit.WaitFor(t, patience, "Chromium to list a page target", func() bool {
		resp, err := http.Get("http://" + hostport + "/json/list")
		if err != nil {
			return false
		}
		var targets []struct {
			Type string `json:"type"`
			WS   string `json:"webSocketDebuggerUrl"`
		}
		json.NewDecoder(resp.Body).Decode(&targets)
		resp.Body.Close()
		for _, tg := range targets {
			if tg.Type == "page" {
				pageWS = tg.WS
			}
		}
		return pageWS != ""
	})
	b := &chromium{dialRPC(t, pageWS, func(method string, _ json.RawMessage) bool {
		return method == "Runtime.exceptionThrown" || method == "Runtime.consoleAPICalled"
	})}
	for _, m := range []string{"Runtime.enable", "Page.enable"} {
		if _, err := b.call(m, nil); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

func (b *chromium) evaluate(expr string) (json.RawMessage, error) {
	res, err := b.call("Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true, "awaitPromise": true})
	if err != nil {
		return nil, err
	}
	var r struct {
		Result struct {
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		Exception *struct {
			Text      string `json:"text"`
			Exception struct {
				Description string `json:"description"`
			} `json:"exception"`
		} `json:"exceptionDetails"`
	}
	if err := json.Unmarshal(res, &r); err != nil {
		return nil, err
	}
	if r.Exception != nil {
		return nil, fmt.Errorf("%s: %s", r.Exception.Text, r.Exception.Exception.Description)
	}
	return r.Result.Value, nil
}

func (b *chromium) navigate(url string) error {
	_, err := b.call("Page.navigate", map[string]any{"url": url})
	return err
}

// cdpKeys are the keys press knows besides characters: DOM key, code and
// Windows virtual key code, which Chromium needs to act on them (focus
// moves on a Tab only with its key code).
var cdpKeys = map[string]struct {
	key, code, text string
	vk              int
}{
	"Tab":   {"Tab", "Tab", "", 9},
	"Enter": {"Enter", "Enter", "\r", 13},
}

func (b *chromium) press(key string) error {
	mods := 0
	if k, ok := strings.CutPrefix(key, "Shift+"); ok {
		key, mods = k, 8
	}
	down := map[string]any{"type": "keyDown", "modifiers": mods}
	if k, ok := cdpKeys[key]; ok {
		down["key"], down["code"], down["windowsVirtualKeyCode"], down["nativeVirtualKeyCode"] = k.key, k.code, k.vk, k.vk
		if k.text != "" {
			down["text"] = k.text
		}
	} else {
		down["key"], down["text"] = key, key
	}
	if _, err := b.call("Input.dispatchKeyEvent", down); err != nil {
		return err
	}
	up := map[string]any{"type": "keyUp", "modifiers": mods, "key": down["key"]}
	if vk, ok := down["windowsVirtualKeyCode"]; ok {
		up["code"], up["windowsVirtualKeyCode"], up["nativeVirtualKeyCode"] = down["code"], vk, vk
	}
	_, err := b.call("Input.dispatchKeyEvent", up)
	return err
}

func (b *chromium) viewport(width, height int) error {
	_, err := b.call("Emulation.setDeviceMetricsOverride", map[string]any{"width": width, "height": height, "deviceScaleFactor": 1,
		"mobile": false})
	return err
}

func (b *chromium) screenshot() ([]byte, error) {
	return pngOf(b.call("Page.captureScreenshot", map[string]any{"format": "png", "captureBeyondViewport": false}))
}
