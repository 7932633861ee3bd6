package main

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Provenance is what a reader needs to tell whether two result files are
// comparable. It is written next to every result file as <file>.provenance.json.
type Provenance struct {
	Started  time.Time         `json:"started"`
	Finished time.Time         `json:"finished"`
	Command  []string          `json:"command"` // canvasbench's arguments
	Flags    map[string]string `json:"flags"`   // every flag's effective value
	Machine  struct {
		CPUModel    string `json:"cpu_model"`
		Cores       int    `json:"cores"`
		MemoryBytes int64  `json:"memory_bytes"`
		Kernel      string `json:"kernel"`
		GoVersion   string `json:"go_version"`
	} `json:"machine"`
	Postgres struct {
		Version  string            `json:"version"`
		Settings map[string]string `json:"settings"`
		Error    string            `json:"error,omitempty"`
	} `json:"postgres"`
	Canvasd struct {
		Version string              `json:"version"` // git describe of the source tree, or the binary given
		Modes   map[string][]string `json:"modes"`   // the canvasd flags of every mode run
	} `json:"canvasd"`
	Repeat int    `json:"repeat"`
	Order  string `json:"order"`
}

// pgSettings are the server settings that change what a benchmark measures.
var pgSettings = []string{"fsync", "synchronous_commit", "shared_buffers", "max_connections", "full_page_writes", "wal_level"}

func collectProvenance(ctx context.Context, cfg Config, started time.Time) *Provenance {
	p := &Provenance{Started: started.UTC(), Finished: time.Now().UTC(), Command: cfg.Args, Flags: cfg.Flags, Repeat: max(cfg.Repeat, 1),
		Order: "interleaved: every round runs every (sweep value, mode) pair once, in the order of --sweep and --modes"}
	p.Machine.CPUModel, p.Machine.Cores = cpuModel(), runtime.NumCPU()
	p.Machine.MemoryBytes = memTotal()
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		p.Machine.Kernel = strings.TrimSpace(string(b))
	}
	p.Machine.GoVersion = runtime.Version()

	p.Postgres.Settings = map[string]string{}
	if err := readPostgres(ctx, cfg.AdminDBURL, p); err != nil {
		p.Postgres.Error = err.Error()
	}

	p.Canvasd.Modes = map[string][]string{}
	names := cfg.Modes
	if !cfg.Compare {
		names = []string{cfg.Mode}
	}
	for _, n := range names {
		if m, ok := modeByName(n); ok {
			if m.Ceiling != "" {
				p.Canvasd.Modes[n] = []string{"(raw SQL ceiling, versioning=" + m.Ceiling + ")"}
			} else {
				p.Canvasd.Modes[n] = m.Args
			}
		}
	}
	switch {
	case cfg.Server == "external":
		p.Canvasd.Version = "external server at " + cfg.URL
	case cfg.CanvasdBin != "":
		p.Canvasd.Version = "binary " + cfg.CanvasdBin
	default:
		p.Canvasd.Version = gitDescribe(cfg.Src)
	}
	return p
}

func readPostgres(ctx context.Context, url string, p *Provenance) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if err := conn.QueryRow(ctx, "SELECT version()").Scan(&p.Postgres.Version); err != nil {
		return err
	}
	for _, s := range pgSettings {
		var v string
		if err := conn.QueryRow(ctx, "SHOW "+s).Scan(&v); err != nil {
			return err
		}
		p.Postgres.Settings[s] = v
	}
	return nil
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}

func memTotal() int64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// gitDescribe names the source tree canvasd was built from ("unknown" when
// it is not a git checkout).
func gitDescribe(src string) string {
	if src == "" {
		wd, _ := os.Getwd()
		var err error
		if src, err = findModuleRoot(wd); err != nil {
			return "unknown"
		}
	}
	out, err := exec.Command("git", "-C", src, "describe", "--always", "--dirty").Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}

// writeProvenance writes p next to the result file path.
func writeProvenance(path string, p *Provenance) error {
	return writeFile(path+".provenance.json", func(f *os.File) error {
		enc := json.NewEncoder(f)
		enc.SetIndent("", "  ")
		return enc.Encode(p)
	})
}
