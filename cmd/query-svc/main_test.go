package main

import (
	"io"
	"strings"
	"testing"
	"time"
)

func TestParseConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		check   func(t *testing.T, c config)
		wantErr []string
	}{
		{
			name: "defaults",
			check: func(t *testing.T, c config) {
				s := c.Service
				if s.Listen != "127.0.0.1:50052" || s.ESDBURL != "esdb://127.0.0.1:2113?tls=false" ||
					s.MongoURI != "mongodb://127.0.0.1:27017/" || s.MongoDB != "cart" || s.AdminListen != "127.0.0.1:50053" ||
					s.MaxWait != 10*time.Second || c.Log.Level != "info" || !s.Security.InsecureNoAuth || !s.Security.Reflection {
					t.Errorf("defaults = %+v", c)
				}
			},
		},
		{
			name: "environment fallbacks",
			env: map[string]string{
				"CART_QUERY_LISTEN": "0.0.0.0:6000", "CART_ESDB_URL": "esdb+discover://es:2113",
				"CART_MONGO_URI": "mongodb://m:27017/", "CART_MONGO_DB": "carts2", "CART_ADMIN_LISTEN": "127.0.0.1:6001",
				"CART_QUERY_MAX_WAIT": "3s", "CART_LOG_LEVEL": "debug",
			},
			check: func(t *testing.T, c config) {
				s := c.Service
				if s.Listen != "0.0.0.0:6000" || s.ESDBURL != "esdb+discover://es:2113" || s.MongoURI != "mongodb://m:27017/" ||
					s.MongoDB != "carts2" || s.AdminListen != "127.0.0.1:6001" || s.MaxWait != 3*time.Second || c.Log.Level != "debug" {
					t.Errorf("from env = %+v", c)
				}
			},
		},
		{
			name: "flags win over the environment",
			args: []string{"--listen", "127.0.0.1:7000", "--mongo-db", "x"},
			env:  map[string]string{"CART_QUERY_LISTEN": "0.0.0.0:6000", "CART_MONGO_DB": "y"},
			check: func(t *testing.T, c config) {
				if c.Service.Listen != "127.0.0.1:7000" || c.Service.MongoDB != "x" {
					t.Errorf("flags = %+v", c)
				}
			},
		},
		{
			name:    "every problem at once",
			args:    []string{"--listen", "nope", "--log-format", "xml", "extra"},
			env:     map[string]string{"CART_QUERY_MAX_WAIT": "soon", "CART_MONGO_URI": "http://u:pw@h/"},
			wantErr: []string{"CART_QUERY_MAX_WAIT", "unexpected arguments", "log-format", "listen", "mongo-uri"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			getenv := func(k string) string {
				if v, ok := tt.env[k]; ok {
					return v
				}
				// query-svc cannot start without deciding who may call.
				return map[string]string{"CART_INSECURE_NO_AUTH": "true"}[k]
			}
			c, err := parseConfig(tt.args, getenv, io.Discard)
			if len(tt.wantErr) > 0 {
				if err == nil {
					t.Fatal("parseConfig succeeded, want errors")
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q lacks %q", err, w)
					}
				}
				if strings.Contains(err.Error(), ":pw@") {
					t.Errorf("error leaks a password: %q", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}
