package embeddedmongo

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

func TestStartRejectsBadConfig(t *testing.T) {
	t.Parallel()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = busy.Close() })

	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{name: "no data dir", cfg: Config{Listen: "127.0.0.1:0"}, wantErr: "data dir is required"},
		{name: "listen without port", cfg: Config{Listen: "127.0.0.1", DataDir: t.TempDir()}, wantErr: "missing port"},
		{name: "port in use", cfg: Config{Listen: busy.Addr().String(), DataDir: t.TempDir()}, wantErr: "address already in use"},
		{name: "negative index interval", cfg: Config{Listen: "127.0.0.1:0", DataDir: t.TempDir(), IndexInterval: -time.Second}, wantErr: "negative index interval"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, err := Start(t.Context(), tc.cfg)
			if err == nil {
				_ = s.Close()
				t.Fatalf("Start succeeded, want error containing %q", tc.wantErr)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Start error = %v, want it to contain %q", err, tc.wantErr)
			}
		})
	}
}

func TestStartReportsBoundPortAndCloseStopsServing(t *testing.T) {
	t.Parallel()
	s, err := Start(t.Context(), Config{Listen: "127.0.0.1:0", DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^mongodb://127\.0\.0\.1:[1-9][0-9]*/$`).MatchString(s.URI()) {
		_ = s.Close()
		t.Fatalf("URI() = %q, want mongodb://127.0.0.1:PORT/", s.URI())
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}

	conn, err := net.DialTimeout("tcp", strings.TrimSuffix(strings.TrimPrefix(s.URI(), "mongodb://"), "/"), time.Second)
	if err == nil {
		_ = conn.Close()
		t.Fatal("server still accepts connections after Close")
	}
}

func TestStartCreatesDataDirAndDataSurvivesRestart(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "nested", "data")

	run := func(f func(*mongo.Collection)) {
		t.Helper()
		s, err := Start(t.Context(), Config{Listen: "127.0.0.1:0", DataDir: dir})
		if err != nil {
			t.Fatal(err)
		}
		defer func() {
			if err := s.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		}()
		client, err := mongo.Connect(options.Client().ApplyURI(s.URI()))
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = client.Disconnect(context.Background()) }()
		f(client.Database("cart").Collection("carts"))
	}

	run(func(c *mongo.Collection) {
		if _, err := c.InsertOne(t.Context(), bson.D{{Key: "_id", Value: "u1"}, {Key: "version", Value: int64(3)}}); err != nil {
			t.Fatal(err)
		}
	})
	run(func(c *mongo.Collection) {
		var got struct {
			Version int64 `bson:"version"`
		}
		if err := c.FindOne(t.Context(), bson.D{{Key: "_id", Value: "u1"}}).Decode(&got); err != nil {
			t.Fatalf("FindOne after restart: %v", err)
		}
		if got.Version != 3 {
			t.Fatalf("version after restart = %d, want 3", got.Version)
		}
	})
}

// TestParallelStarts guards the serialisation of ferretdb.New (a package-level write in FerretDB
// that the race detector would otherwise flag).
func TestParallelStarts(t *testing.T) {
	t.Parallel()
	for i := range 4 {
		t.Run(itoa(i), func(t *testing.T) {
			t.Parallel()
			s := StartForTest(t)
			client := ConnectForTest(t, s)
			if err := client.Ping(t.Context(), nil); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestNewDatabaseName(t *testing.T) {
	t.Parallel()
	s := StartForTest(t)
	client := ConnectForTest(t, s)
	valid := regexp.MustCompile(`^[a-zA-Z0-9_-]{1,63}$`)

	var names []string
	t.Run("Long/Name With Spaces.and.dots/"+strings.Repeat("x", 80), func(t *testing.T) {
		for range 2 {
			name := s.NewDatabaseName(t)
			if !valid.MatchString(name) {
				t.Fatalf("NewDatabaseName() = %q, not a valid FerretDB database name", name)
			}
			if _, err := client.Database(name).Collection("c").InsertOne(t.Context(), bson.D{{Key: "x", Value: 1}}); err != nil {
				t.Fatalf("insert into %s: %v", name, err)
			}
			names = append(names, name)
		}
		if names[0] == names[1] {
			t.Fatalf("NewDatabaseName returned %q twice", names[0])
		}
	})

	dbs, err := client.ListDatabaseNames(t.Context(), bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		if slices.Contains(dbs, name) {
			t.Errorf("database %s still exists after its test's cleanup: %v", name, dbs)
		}
	}
}

func TestQuietHandlerDropsRoutineWarningsOnly(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log := slog.New(quietHandler{slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn})}).With("name", "conn")

	log.Warn("Response header: length: 121")
	log.Warn("Response message:\n{}")
	log.Warn("Failed to set deadline: use of closed network connection")
	log.Info("Connection started")
	log.Warn("Connection stopped", "error", "boom")
	log.Error("Response header: closing connection")

	out := buf.String()
	for _, want := range []string{"Connection stopped", "closing connection"} {
		if !strings.Contains(out, want) {
			t.Errorf("log output lacks %q:\n%s", want, out)
		}
	}
	for _, unwanted := range []string{"length: 121", "Response message", "Failed to set deadline", "Connection started"} {
		if strings.Contains(out, unwanted) {
			t.Errorf("log output contains %q:\n%s", unwanted, out)
		}
	}
}
