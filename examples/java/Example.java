// The sessions API from Java with grpc-java, end to end.
//
// Generate the stubs first (from the repository):
//   npx buf generate --template buf.gen.java.yaml -o examples/java
// then compile and run it with grpc-java and protobuf-java on the class path (Debian:
// libgrpc-java, libprotobuf-java), with the service running:
//   javac -cp "/usr/share/java/*" -d examples/java/classes examples/java/Example.java $(find examples/java/gen -name '*.java')
//   java -cp "examples/java/classes:/usr/share/java/*" Example 127.0.0.1:8090
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.StatusRuntimeException;
import com.google.protobuf.Struct;
import com.google.protobuf.Value;
import com.google.protobuf.util.JsonFormat;
import java.util.concurrent.TimeUnit;
import sessions.v1.Sessions.*;
import sessions.v1.SessionsServiceGrpc;

public final class Example {
  /** A one-key JSON object as the google.protobuf.Value that user and data take. */
  static Value theme(String name) {
    return Value.newBuilder()
        .setStructValue(Struct.newBuilder().putFields("theme", Value.newBuilder().setStringValue(name).build()))
        .build();
  }

  public static void main(String[] args) throws Exception {
    String address = args.length > 0 ? args[0] : "127.0.0.1:8090";
    ManagedChannel channel = ManagedChannelBuilder.forTarget(address).usePlaintext().build();
    try {
      // Each call gets its own deadline.
      SessionsServiceGrpc.SessionsServiceBlockingStub sessions = SessionsServiceGrpc.newBlockingStub(channel);
      OpenSessionResponse opened = sessions.withDeadlineAfter(3, TimeUnit.SECONDS)
          .openSession(OpenSessionRequest.newBuilder().setUserId("123").setClient("web").setData(theme("dark")).build());
      String id = opened.getSession().getId();
      System.out.println("opened " + id + " for " + opened.getSession().getUserId());

      // What a gateway does on every request: the token proves the session.
      ValidateSessionResponse valid = sessions.withDeadlineAfter(3, TimeUnit.SECONDS)
          .validateSession(ValidateSessionRequest.newBuilder().setToken(opened.getToken()).setClient("web").build());
      System.out.println("validated " + valid.getSession().getId());

      StoreSessionDataResponse stored = sessions.withDeadlineAfter(3, TimeUnit.SECONDS)
          .storeSessionData(StoreSessionDataRequest.newBuilder().setId(id).setData(theme("light")).setExpectedVersion(1).build());
      String data = JsonFormat.printer().omittingInsignificantWhitespace().print(stored.getSession().getData());
      System.out.println("stored " + data + ", version " + stored.getSession().getVersion());

      GetSessionsResponse page = sessions.withDeadlineAfter(3, TimeUnit.SECONDS)
          .getSessions(GetSessionsRequest.newBuilder()
              .setFilter(SessionFilter.newBuilder().setUserId("123").setActive(true)).setTotal(true).build());
      System.out.println("listed " + page.getSessionsCount() + " of " + page.getTotal());

      CloseSessionResponse closed = sessions.withDeadlineAfter(3, TimeUnit.SECONDS)
          .closeSession(CloseSessionRequest.newBuilder().setId(id).build());
      System.out.println("closed: active=" + closed.getSession().getActive());

      sessions.withDeadlineAfter(3, TimeUnit.SECONDS).deleteSessionById(DeleteSessionByIdRequest.newBuilder().setId(id).build());
      System.out.println("deleted");

      // Errors are StatusRuntimeException: switch on the status code.
      try {
        sessions.withDeadlineAfter(3, TimeUnit.SECONDS)
            .validateSession(ValidateSessionRequest.newBuilder().setToken(opened.getToken()).build());
      } catch (StatusRuntimeException error) {
        System.out.println("refused: " + error.getStatus().getCode());
      }
    } finally {
      channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
  }
}
