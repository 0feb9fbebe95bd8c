// Package healthtest runs the WordPressEnvironment health check in gopher-lua, the Lua VM
// Argo CD embeds, over the cases of health_test.yaml.
//
// The Python tests run the same cases on a Lua 5.1 (tests/unit/test_argocd_health.py);
// this one runs them where Argo CD does, with the libraries Argo CD opens for a script
// from argocd-cm (base, table, package and a reduced os, no string or math), the resource
// as the global `obj` converted the way Argo CD converts an unstructured object, and
// Argo CD's one-second budget for a script. Run it with `go test ./...` in this folder,
// or through tests/unit/test_argocd_health_gopher_lua.py.
package healthtest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	lua "github.com/yuin/gopher-lua"
	"sigs.k8s.io/yaml"
)

// The check's folder, in Argo CD's resource_customizations layout.
const checkDir = "../resource_customizations/bbws.io/WordPressEnvironment"

// What Argo CD reports when a script returns a status it does not know.
const invalidHealthStatus = "Lua returned an invalid health status"

// gitops-engine's health codes: anything else becomes Unknown.
var validStatuses = map[string]bool{
	"Healthy": true, "Progressing": true, "Degraded": true,
	"Suspended": true, "Missing": true, "Unknown": true,
}

// The os functions Argo CD leaves a script: reading the clock, nothing that touches the
// process or the file system.
var safeOs = []string{"time", "date", "clock", "difftime"}

type healthStatus struct {
	Status  string `json:"status"`
	Message string `json:"message"`
}

type testCase struct {
	HealthStatus healthStatus `json:"healthStatus"`
	InputPath    string       `json:"inputPath"`
}

type testFile struct {
	Tests []testCase `json:"tests"`
}

func loadCases(t *testing.T) []testCase {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(checkDir, "health_test.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var file testFile
	if err := yaml.UnmarshalStrict(raw, &file); err != nil {
		t.Fatalf("health_test.yaml: %v", err)
	}
	if len(file.Tests) == 0 {
		t.Fatal("health_test.yaml has no tests")
	}
	return file.Tests
}

// toLua turns a decoded Kubernetes object into Lua values as Argo CD does: every number a
// Lua number (float64), maps into hash tables, lists into arrays from index 1.
func toLua(l *lua.LState, value any) (lua.LValue, error) {
	switch v := value.(type) {
	case nil:
		return lua.LNil, nil
	case bool:
		return lua.LBool(v), nil
	case string:
		return lua.LString(v), nil
	case float64:
		return lua.LNumber(v), nil
	case int64:
		return lua.LNumber(v), nil
	case []any:
		array := l.CreateTable(len(v), 0)
		for _, item := range v {
			converted, err := toLua(l, item)
			if err != nil {
				return nil, err
			}
			array.Append(converted)
		}
		return array, nil
	case map[string]any:
		table := l.CreateTable(0, len(v))
		for key, item := range v {
			converted, err := toLua(l, item)
			if err != nil {
				return nil, err
			}
			table.RawSetString(key, converted)
		}
		return table, nil
	}
	return nil, fmt.Errorf("%T cannot come from a Kubernetes object", value)
}

// openArgoLibraries opens what Argo CD opens for a health script from argocd-cm.
func openArgoLibraries(l *lua.LState) error {
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{
		{lua.LoadLibName, lua.OpenPackage},
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
		{lua.OsLibName, lua.OpenOs},
	} {
		err := l.CallByParam(lua.P{Fn: l.NewFunction(lib.open), Protect: true}, lua.LString(lib.name))
		if err != nil {
			return err
		}
	}
	full, ok := l.GetGlobal(lua.OsLibName).(*lua.LTable)
	if !ok {
		return fmt.Errorf("the os library did not open")
	}
	reduced := l.NewTable()
	for _, name := range safeOs {
		reduced.RawSetString(name, full.RawGetString(name))
	}
	l.SetGlobal(lua.OsLibName, reduced)
	return nil
}

// runHealth evaluates the script for one object and reads the table it returns.
func runHealth(script string, obj map[string]any) (healthStatus, error) {
	l := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer l.Close()
	if err := openArgoLibraries(l); err != nil {
		return healthStatus{}, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	l.SetContext(ctx)
	value, err := toLua(l, obj)
	if err != nil {
		return healthStatus{}, err
	}
	l.SetGlobal("obj", value)
	if err := l.DoString(script); err != nil {
		return healthStatus{}, err
	}
	result, ok := l.Get(-1).(*lua.LTable)
	if !ok {
		return healthStatus{}, fmt.Errorf("expect table output from Lua script, not %s", l.Get(-1).Type())
	}
	status, _ := result.RawGetString("status").(lua.LString)
	if !validStatuses[string(status)] {
		return healthStatus{Status: "Unknown", Message: invalidHealthStatus}, nil
	}
	message, _ := result.RawGetString("message").(lua.LString)
	return healthStatus{Status: string(status), Message: string(message)}, nil
}

func readObject(t *testing.T, inputPath string) map[string]any {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(checkDir, inputPath))
	if err != nil {
		t.Fatal(err)
	}
	var obj map[string]any
	if err := yaml.Unmarshal(raw, &obj); err != nil {
		t.Fatalf("%s: %v", inputPath, err)
	}
	return obj
}

func TestHealthCases(t *testing.T) {
	script, err := os.ReadFile(filepath.Join(checkDir, "health.lua"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range loadCases(t) {
		t.Run(c.InputPath, func(t *testing.T) {
			got, err := runHealth(string(script), readObject(t, c.InputPath))
			if err != nil {
				t.Fatalf("health.lua failed: %v", err)
			}
			if got != c.HealthStatus {
				t.Errorf("got %+v, want %+v", got, c.HealthStatus)
			}
		})
	}
}

func TestEveryTestdataFileIsACase(t *testing.T) {
	var referenced []string
	for _, c := range loadCases(t) {
		referenced = append(referenced, c.InputPath)
	}
	onDisk, err := filepath.Glob(filepath.Join(checkDir, "testdata", "*"))
	if err != nil {
		t.Fatal(err)
	}
	for i, path := range onDisk {
		onDisk[i] = filepath.ToSlash(filepath.Join("testdata", filepath.Base(path)))
	}
	sort.Strings(referenced)
	sort.Strings(onDisk)
	if fmt.Sprint(referenced) != fmt.Sprint(onDisk) {
		t.Errorf("cases %v, testdata files %v", referenced, onDisk)
	}
}

// The sandbox is Argo CD's: a script that reaches for string or math fails here as it
// would in the cluster, and one that spins is stopped.
func TestSandboxIsArgoCDs(t *testing.T) {
	obj := map[string]any{"metadata": map[string]any{"name": "x"}}
	for name, script := range map[string]string{
		"string library": `return {status = string.upper("healthy")}`,
		"math library":   `return {status = tostring(math.floor(1))}`,
		"os.execute":     `os.execute("true") return {status = "Healthy"}`,
		"endless loop":   `while true do end`,
	} {
		if _, err := runHealth(script, obj); err == nil {
			t.Errorf("%s: the script ran, Argo CD would refuse it", name)
		}
	}
	got, err := runHealth(`return {status = "Fine"}`, obj)
	if err != nil || got.Status != "Unknown" || got.Message != invalidHealthStatus {
		t.Errorf("an unknown status: got %+v, %v", got, err)
	}
}
