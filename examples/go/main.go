// The sessions API from Go with google.golang.org/grpc, end to end.
//
// Generate the stubs first (from the repository):
//
//	npx buf generate --template buf.gen.go.yaml -o examples/go
//
// then build and run it with the service running (see the README for a module or GOPATH setup):
//
//	go run . 127.0.0.1:8090
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"os"
	"time"

	sessionsv1 "sessionsexample/gen/sessions/v1"

	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"
)

func main() {
	address := "127.0.0.1:8090"
	if len(os.Args) > 1 {
		address = os.Args[1]
	}
	conn, err := grpc.Dial(address, grpc.WithInsecure())
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	sessions := sessionsv1.NewSessionsServiceClient(conn)
	// Each call gets its own deadline (its timer releases the context when it fires).
	call := func() context.Context {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		time.AfterFunc(3*time.Second, cancel)
		return ctx
	}

	data, _ := structpb.NewValue(map[string]interface{}{"theme": "dark"})
	opened, err := sessions.OpenSession(call(), &sessionsv1.OpenSessionRequest{UserId: "123", Client: "web", Data: data})
	if err != nil {
		log.Fatal(err)
	}
	id := opened.GetSession().GetId()
	fmt.Printf("opened %s for %s\n", id, opened.GetSession().GetUserId())

	// What a gateway does on every request: the token proves the session.
	valid, err := sessions.ValidateSession(call(), &sessionsv1.ValidateSessionRequest{Token: opened.GetToken(), Client: "web"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("validated %s\n", valid.GetSession().GetId())

	data, _ = structpb.NewValue(map[string]interface{}{"theme": "light"})
	version := int64(1)
	stored, err := sessions.StoreSessionData(call(), &sessionsv1.StoreSessionDataRequest{Id: id, Data: data, ExpectedVersion: &version})
	if err != nil {
		log.Fatal(err)
	}
	text, _ := json.Marshal(stored.GetSession().GetData().AsInterface())
	fmt.Printf("stored %s, version %d\n", text, stored.GetSession().GetVersion())

	active := true
	page, err := sessions.GetSessions(call(), &sessionsv1.GetSessionsRequest{
		Filter: &sessionsv1.SessionFilter{UserId: "123", Active: &active}, Total: true,
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("listed %d of %d\n", len(page.GetSessions()), page.GetTotal())

	closed, err := sessions.CloseSession(call(), &sessionsv1.CloseSessionRequest{Id: id})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("closed: active=%t\n", closed.GetSession().GetActive())

	if _, err := sessions.DeleteSessionById(call(), &sessionsv1.DeleteSessionByIdRequest{Id: id}); err != nil {
		log.Fatal(err)
	}
	fmt.Println("deleted")

	// Errors carry a status code, and the ErrorReason as a status detail: switch on those.
	_, err = sessions.ValidateSession(call(), &sessionsv1.ValidateSessionRequest{Token: opened.GetToken()})
	st := status.Convert(err)
	reason := "none"
	for _, detail := range st.Details() {
		if d, ok := detail.(*sessionsv1.ErrorDetail); ok {
			reason = d.GetReason().String()
		}
	}
	fmt.Printf("refused: %s %s\n", st.Code(), reason)
}
