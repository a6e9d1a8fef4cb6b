package agent_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/medchain/medchain/agent"
	"github.com/medchain/medchain/client"
	"github.com/medchain/medchain/keyring"
	"github.com/medchain/medchain/smart"
)

// TestAttackPinnedAudienceAndHookOrigins: behind a configured public URL, a client assertion made
// for another host is refused (a peer that got one cannot replay it here by sending its own
// Host); a SMART client's subscriptions notify its registered origins only. No node is needed:
// neither reaches the ledger.
func TestAttackPinnedAudienceAndHookOrigins(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	auth, err := smart.New([]smart.Client{{ID: "ehr", Name: "EHR", Scope: "system/*.cruds", Origins: []string{"https://ehr.example"},
		JWKS: &jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k", Algorithm: "ES384"}}}}}, token)
	if err != nil {
		t.Fatal(err)
	}
	k, _ := keyring.Generate("org")
	a := agent.New(&client.Signer{C: client.New("http://127.0.0.1:1"), ChainID: "test", Key: k}, agent.Config{})
	const public = "https://agent.example.org"
	srv := httptest.NewServer(agent.NewFacadeWith(a, agent.FacadeConfig{Token: token, SMART: auth, PublicURL: public}, nil))
	defer srv.Close()

	var conf map[string]any
	resp, err := http.Get(srv.URL + "/fhir/.well-known/smart-configuration")
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(resp.Body).Decode(&conf)
	resp.Body.Close()
	if conf["token_endpoint"] != public+"/auth/token" {
		t.Fatalf("token endpoint %v", conf["token_endpoint"])
	}
	tokenFor := func(aud string) (int, string) {
		sig, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES384, Key: key}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", "k"))
		a, _ := jwt.Signed(sig).Claims(jwt.Claims{Issuer: "ehr", Subject: "ehr", Audience: jwt.Audience{aud}, ID: aud,
			Expiry: jwt.NewNumericDate(time.Now().Add(time.Minute))}).Serialize()
		resp, err := http.PostForm(srv.URL+"/auth/token", url.Values{"grant_type": {"client_credentials"}, "scope": {"system/*.cruds"},
			"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {a}})
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body struct {
			AccessToken string `json:"access_token"`
		}
		json.NewDecoder(resp.Body).Decode(&body)
		return resp.StatusCode, body.AccessToken
	}
	if status, _ := tokenFor(srv.URL + "/auth/token"); status != http.StatusUnauthorized {
		t.Errorf("an assertion for the address the request arrived at, not the public one: %d", status)
	}
	status, bearer := tokenFor(public + "/auth/token")
	if status != http.StatusOK {
		t.Fatalf("an assertion for the public URL: %d", status)
	}
	fc := &facadeClient{t: t, base: srv.URL}
	for endpoint, want := range map[string]int{
		"https://elsewhere.example/hook": http.StatusBadRequest, // not the client's origin
		"https://ehr.example/hook":       http.StatusNotFound,   // its origin; the patient is unknown here
	} {
		body := subscriptionFor(agent.TopicRecordAdded, "?patient=nobody", endpoint)
		if status, _, out := fc.withBearer("POST", "/fhir/Subscription", body, bearer, nil); status != want {
			t.Errorf("subscription to %s: %d %s", endpoint, status, out)
		}
	}
}
