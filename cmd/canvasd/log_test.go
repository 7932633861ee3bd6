package main

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Log lines carry ISO-8601 timestamps and no stack traces below panics.
func TestLogLinesHaveISOTimestampsAndNoStacks(t *testing.T) {
	for _, format := range []string{"json", "console"} {
		zc, err := loggerConfig(format, "info")
		require.NoError(t, err)
		path := filepath.Join(t.TempDir(), "log")
		zc.OutputPaths = []string{path}
		log, err := zc.Build(zap.AddStacktrace(zapcore.DPanicLevel))
		require.NoError(t, err)
		log.Warn("database unreachable", zap.Error(errors.New("connection refused")))
		log.Error("request failed", zap.Error(errors.New("boom")))
		_ = log.Sync()
		b, err := os.ReadFile(path)
		require.NoError(t, err)
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		require.Len(t, lines, 2, "%s: one line each, no stack:\n%s", format, b)
		const iso = `\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}(Z|[+-]\d{4})`
		for _, line := range lines {
			if format == "console" {
				require.Regexp(t, "^"+iso+"\t", line)
				continue
			}
			var e map[string]any
			require.NoError(t, json.Unmarshal([]byte(line), &e))
			require.Regexp(t, "^"+iso+"$", e["ts"])
			require.NotContains(t, e, "stacktrace")
		}
	}
	_, err := loggerConfig("json", "loud")
	require.Error(t, err)
}
