package console

import "net/http"

// OperatorAPI is what the operator pages need.
type OperatorAPI interface{}

func (c *Console) operatorRoutes(m *http.ServeMux) {}
