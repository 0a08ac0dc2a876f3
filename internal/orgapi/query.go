package orgapi

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// APIVersion is the org REST API version [Client.OrgName] calls.
const APIVersion = "v60.0"

// CodeMalformedQuery is the errorCode the org's REST API answers a query it
// cannot parse with.
const CodeMalformedQuery = "MALFORMED_QUERY"

// queryOrgName is the SOQL query for the org's own name.
const queryOrgName = "SELECT Name FROM Organization"

// OrgName returns the org's name as its admins set it, read with the REST
// query resource (GET {instance_url}/services/data/vXX.X/query?q=SELECT+Name+FROM+Organization)
// and the token's access token. The token must come from [Client.Exchange] or
// [Client.Refresh] (it needs InstanceURL). A refused token matches [ErrInvalidToken].
func (c *Client) OrgName(ctx context.Context, tok *Token) (string, error) {
	if tok == nil || tok.InstanceURL == "" {
		return "", errors.New("orgapi: org name: the token has no instance URL")
	}
	u := strings.TrimRight(tok.InstanceURL, "/") + "/services/data/" + APIVersion + "/query?q=" + url.QueryEscape(queryOrgName)
	var res struct {
		TotalSize int `json:"totalSize"`
		Records   []struct {
			Name string `json:"Name"`
		} `json:"records"`
	}
	if err := c.getJSON(ctx, u, tok.AccessToken, &res); err != nil {
		return "", fmt.Errorf("org name: %w", err)
	}
	if len(res.Records) == 0 || res.Records[0].Name == "" {
		return "", errors.New("orgapi: org name: the org returned no Organization record")
	}
	return res.Records[0].Name, nil
}
