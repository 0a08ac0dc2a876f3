package config

import "fmt"

// NATSAuth is how a part of orgbridge proves who it is to NATS, and which
// server it trusts. deploy/nats/nats.conf gives every role (ingress, worker,
// ops) its own user with only its subjects. At most one of CredsFile,
// NKeySeedFile and User is set; none means no credentials (a server without
// authentication, or user and password in NATS_URL). `orgbridge dev` ignores it:
// its embedded server has no users.
type NATSAuth struct {
	// CredsFile is a .creds file (user JWT and nkey seed) of an operator-mode
	// server (NATS_CREDS).
	CredsFile string
	// NKeySeedFile is a file holding a user nkey seed, SU… (NATS_NKEY_SEED).
	NKeySeedFile string
	// User and Password are a user of the server's configuration (NATS_USER,
	// NATS_PASSWORD).
	User     string
	Password Secret
	// TLSCAFile is the CA bundle the server's certificate is checked against
	// instead of the system roots (NATS_TLS_CA).
	TLSCAFile string
	// TLSCertFile and TLSKeyFile are this client's certificate and key, for a
	// server that verifies clients (NATS_TLS_CERT, NATS_TLS_KEY).
	TLSCertFile, TLSKeyFile string
}

// Set reports whether a user is named (by password, creds or nkey).
func (a NATSAuth) Set() bool { return a.User != "" || a.CredsFile != "" || a.NKeySeedFile != "" }

// LoadNATSAuth reads the NATS credentials (NATS_USER, NATS_PASSWORD,
// NATS_CREDS, NATS_NKEY_SEED, NATS_TLS_*) through getenv and checks they
// make sense together; the files are read when connecting.
func LoadNATSAuth(getenv func(string) string) (NATSAuth, error) {
	return loadNATSAuth(getenv, "NATS_")
}

// LoadNATSAdminAuth reads the credentials the ingress's admin API and
// console use (NATS_ADMIN_USER, NATS_ADMIN_PASSWORD, NATS_ADMIN_CREDS,
// NATS_ADMIN_NKEY_SEED; TLS as for [LoadNATSAuth]).
func LoadNATSAdminAuth(getenv func(string) string) (NATSAuth, error) {
	a, err := loadNATSAuth(getenv, "NATS_ADMIN_")
	if !a.Set() && err == nil {
		return NATSAuth{}, nil // no admin user: the admin API and console share the ingress's connection
	}
	return a, err
}

func loadNATSAuth(getenv func(string) string, prefix string) (NATSAuth, error) {
	a := NATSAuth{
		CredsFile:    getenv(prefix + "CREDS"),
		NKeySeedFile: getenv(prefix + "NKEY_SEED"),
		User:         getenv(prefix + "USER"),
		Password:     Secret(getenv(prefix + "PASSWORD")),
		TLSCAFile:    getenv("NATS_TLS_CA"),
		TLSCertFile:  getenv("NATS_TLS_CERT"),
		TLSKeyFile:   getenv("NATS_TLS_KEY"),
	}
	return a, a.validate(prefix)
}

// Validate reports the first pair of settings that cannot go together,
// naming the variables.
func (a NATSAuth) Validate() error { return a.validate("NATS_") }

func (a NATSAuth) validate(prefix string) error {
	var set []string
	for _, m := range []struct{ name, v string }{{"CREDS", a.CredsFile}, {"NKEY_SEED", a.NKeySeedFile}, {"USER", a.User}} {
		if m.v != "" {
			set = append(set, prefix+m.name)
		}
	}
	switch {
	case len(set) > 1:
		return &Error{set[0], fmt.Sprintf("and %s are both set; a part authenticates one way: choose one", set[1])}
	case a.User != "" && a.Password == "":
		return &Error{prefix + "PASSWORD", "is required with " + prefix + "USER"}
	case a.User == "" && a.Password != "":
		return &Error{prefix + "USER", "is required with " + prefix + "PASSWORD (the user of deploy/nats/nats.conf the password belongs to)"}
	case (a.TLSCertFile == "") != (a.TLSKeyFile == ""):
		return &Error{"NATS_TLS_CERT", "and NATS_TLS_KEY go together: set both for a client certificate, or neither"}
	}
	return nil
}
