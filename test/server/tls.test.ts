import { createClient, ConnectError } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { SessionsService } from "../../gen/sessions/v1/sessions_pb.js";
import { makeCertificates, type TestCertificates } from "../support/certificates.js";
import { startTestServer, tempDir, type TestServer } from "../support/test-server.js";

/** OpenSession over the gRPC port with grpc-js and the given credentials; resolves to the status code. */
function grpcOpen(port: number, credentials: grpc.ChannelCredentials): Promise<number> {
  const Client = grpc.makeGenericClientConstructor(
    {
      open: {
        path: "/sessions.v1.SessionsService/OpenSession",
        requestStream: false,
        responseStream: false,
        // OpenSessionRequest{user_id: "u1"}: field 1, length 2.
        requestSerialize: () => Buffer.from([0x0a, 0x02, 0x75, 0x31]),
        requestDeserialize: (b: Buffer) => b,
        responseSerialize: (b: Buffer) => b,
        responseDeserialize: (b: Buffer) => b,
      },
    },
    "SessionsService",
  );
  const client = new Client(`localhost:${port}`, credentials);
  return new Promise((resolve) => {
    const open = (client as unknown as { open: (r: null, o: object, cb: (e: grpc.ServiceError | null) => void) => void }).open;
    open.call(client, null, { deadline: Date.now() + 5000 }, (error) => {
      client.close();
      resolve(error?.code ?? 0);
    });
  });
}

/** OpenSession over the HTTP port with Connect over HTTPS (HTTP/1.1 or HTTP/2). */
async function httpsOpen(port: number, httpVersion: "1.1" | "2", tls: object): Promise<string> {
  const transport = createConnectTransport({ baseUrl: `https://localhost:${port}`, httpVersion, nodeOptions: tls });
  try {
    const { session } = await createClient(SessionsService, transport).openSession({ userId: "u1" });
    return session?.userId ?? "";
  } catch (error) {
    return `error: ${ConnectError.from(error).rawMessage}`;
  }
}

describe("TLS on both ports", () => {
  const dir = tempDir();
  let certs: TestCertificates;
  let server: TestServer | undefined;
  beforeAll(() => {
    certs = makeCertificates(dir.path);
  });
  afterEach(async () => {
    await server?.stop();
    server = undefined;
  });
  afterAll(() => dir.remove());

  it("serves gRPC, and Connect over HTTP/1.1 and HTTP/2, to clients that trust the CA", async () => {
    server = await startTestServer({ tlsCertFile: certs.serverCert, tlsKeyFile: certs.serverKey });
    expect(await grpcOpen(server.app.grpcPort, grpc.credentials.createSsl(certs.pem.ca))).toBe(0);
    expect(await httpsOpen(server.app.httpPort, "1.1", { ca: certs.pem.ca })).toBe("u1");
    expect(await httpsOpen(server.app.httpPort, "2", { ca: certs.pem.ca })).toBe("u1");
    expect(await grpcOpen(server.app.grpcPort, grpc.credentials.createInsecure())).toBe(grpc.status.UNAVAILABLE);
    expect(await httpsOpen(server.app.httpPort, "1.1", {})).toMatch(/^error: .*certificate/);
  });

  it("with a client CA, refuses clients without a certificate and serves those with one", async () => {
    server = await startTestServer({
      tlsCertFile: certs.serverCert,
      tlsKeyFile: certs.serverKey,
      tlsClientCaFile: certs.caCert,
    });
    const withCert = { ca: certs.pem.ca, cert: certs.pem.clientCert, key: certs.pem.clientKey };
    expect(await grpcOpen(server.app.grpcPort, grpc.credentials.createSsl(certs.pem.ca, certs.pem.clientKey, certs.pem.clientCert))).toBe(0);
    expect(await httpsOpen(server.app.httpPort, "2", withCert)).toBe("u1");
    expect(await httpsOpen(server.app.httpPort, "1.1", withCert)).toBe("u1");
    expect(await grpcOpen(server.app.grpcPort, grpc.credentials.createSsl(certs.pem.ca))).toBe(grpc.status.UNAVAILABLE);
    expect(await httpsOpen(server.app.httpPort, "1.1", { ca: certs.pem.ca })).toMatch(/^error: /);
    expect(await httpsOpen(server.app.httpPort, "2", { ca: certs.pem.ca })).toMatch(/^error: /);
  });

  it("fails to start with a clear message when a TLS file cannot be read", async () => {
    await expect(startTestServer({ tlsCertFile: "/nonexistent.crt", tlsKeyFile: certs.serverKey })).rejects.toThrow(
      /cannot read the TLS certificate \/nonexistent\.crt/,
    );
  });
});
