package dev.specula.sample;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;

import tools.jackson.databind.JsonNode;
import tools.jackson.databind.json.JsonMapper;

/**
 * Plain HTTP (java.net.http) to the gateway, for what an SDK hides: raw bodies, headers,
 * event streams.
 */
final class GatewayHttp {

    private static final JsonMapper JSON = JsonMapper.builder().build();

    private final HttpClient client = HttpClient.newBuilder()
        .version(HttpClient.Version.HTTP_1_1)
        .connectTimeout(Duration.ofSeconds(5))
        .build();

    private final URI base;

    private final URI completions;

    GatewayHttp(int port) {
        this.base = URI.create("http://localhost:" + port);
        this.completions = base.resolve("/v1/chat/completions");
    }

    HttpResponse<String> get(String path) {
        return send(HttpRequest.newBuilder(base.resolve(path)).timeout(Duration.ofSeconds(60)).GET().build(),
                HttpResponse.BodyHandlers.ofString());
    }

    HttpResponse<String> post(String body) {
        return send(request(body), HttpResponse.BodyHandlers.ofString());
    }

    /**
     * A JSON POST to another endpoint than the chat's, e.g. {@code /v1/completions}, with
     * extra headers given as name, value, name, value...
     */
    HttpResponse<String> postTo(String path, String body, String... headers) {
        return send(HttpRequest.newBuilder(base.resolve(path))
            .timeout(Duration.ofSeconds(60))
            .header("Content-Type", "application/json")
            .headers(withNone(headers))
            .POST(HttpRequest.BodyPublishers.ofString(body))
            .build(), HttpResponse.BodyHandlers.ofString());
    }

    /**
     * The JSON objects of a server-sent event stream that ends with {@code data: [DONE]},
     * in order.
     */
    java.util.List<JsonNode> events(HttpResponse<String> response) {
        String body = response.body();
        if (!body.endsWith("data: [DONE]\n\n")) {
            throw new AssertionError("The stream does not end with data: [DONE]: " + body);
        }
        java.util.List<String> events = java.util.List.of(body.split("\n\n"));
        return events.subList(0, events.size() - 1).stream().map((event) -> {
            if (!event.startsWith("data: ")) {
                throw new AssertionError("Not a data event: " + event);
            }
            return json(event.substring(6));
        }).toList();
    }

    /** A POST with extra headers, given as name, value, name, value... */
    HttpResponse<String> post(String body, String... headers) {
        return send(HttpRequest.newBuilder(completions)
            .timeout(Duration.ofSeconds(60))
            .header("Content-Type", "application/json")
            .headers(withNone(headers))
            .POST(HttpRequest.BodyPublishers.ofString(body))
            .build(), HttpResponse.BodyHandlers.ofString());
    }

    /**
     * A POST whose body has no Content-Length: sent chunked, its size known only once
     * read.
     */
    HttpResponse<String> postChunked(String body) {
        byte[] bytes = body.getBytes(java.nio.charset.StandardCharsets.UTF_8);
        return send(HttpRequest.newBuilder(completions)
            .timeout(Duration.ofSeconds(60))
            .header("Content-Type", "application/json")
            .POST(HttpRequest.BodyPublishers.ofInputStream(() -> new java.io.ByteArrayInputStream(bytes)))
            .build(), HttpResponse.BodyHandlers.ofString());
    }

    /**
     * A POST whose client accepts only server-sent events, as streaming SDKs often do.
     */
    HttpResponse<String> postAcceptingOnlyEvents(String body) {
        return send(HttpRequest.newBuilder(completions)
            .timeout(Duration.ofSeconds(60))
            .header("Content-Type", "application/json")
            .header("Accept", "text/event-stream")
            .POST(HttpRequest.BodyPublishers.ofString(body))
            .build(), HttpResponse.BodyHandlers.ofString());
    }

    HttpResponse<InputStream> postStreaming(String body) {
        return send(request(body), HttpResponse.BodyHandlers.ofInputStream());
    }

    /** A GET with extra headers, given as name, value, name, value... */
    HttpResponse<String> get(String path, String... headers) {
        return send(HttpRequest.newBuilder(base.resolve(path))
            .timeout(Duration.ofSeconds(60))
            .headers(withNone(headers))
            .GET()
            .build(), HttpResponse.BodyHandlers.ofString());
    }

    /** A DELETE with extra headers, given as name, value, name, value... */
    HttpResponse<String> delete(String path, String... headers) {
        return send(HttpRequest.newBuilder(base.resolve(path))
            .timeout(Duration.ofSeconds(60))
            .headers(withNone(headers))
            .DELETE()
            .build(), HttpResponse.BodyHandlers.ofString());
    }

    /**
     * A connection of its own, for what client libraries do not do: stop reading, close
     * mid-request, send a path unnormalized.
     * @param receiveBuffer the socket's receive buffer in bytes; 0 for the default
     */
    Socket connect(int receiveBuffer) {
        try {
            Socket socket = new Socket();
            if (receiveBuffer > 0) {
                socket.setReceiveBufferSize(receiveBuffer);
            }
            socket.connect(new InetSocketAddress(base.getHost(), base.getPort()), 5000);
            socket.setSoTimeout(60_000);
            return socket;
        }
        catch (IOException ex) {
            throw new UncheckedIOException(ex);
        }
    }

    /**
     * Writes an HTTP/1.1 request as given ({@code target} unnormalized, headers as name,
     * value, ...).
     */
    static void write(Socket socket, String method, String target, String body, String... headers) {
        byte[] bytes = body == null ? new byte[0] : body.getBytes(StandardCharsets.UTF_8);
        StringBuilder head = new StringBuilder(method + " " + target + " HTTP/1.1\r\nHost: localhost\r\n");
        for (int i = 0; i + 1 < headers.length; i += 2) {
            head.append(headers[i]).append(": ").append(headers[i + 1]).append("\r\n");
        }
        if (body != null) {
            head.append("Content-Type: application/json\r\nContent-Length: ").append(bytes.length).append("\r\n");
        }
        head.append("\r\n");
        try {
            socket.getOutputStream().write(head.toString().getBytes(StandardCharsets.US_ASCII));
            socket.getOutputStream().write(bytes);
            socket.getOutputStream().flush();
        }
        catch (IOException ex) {
            throw new UncheckedIOException(ex);
        }
    }

    /** Reads one line (up to CRLF) of a raw response. */
    static String readLine(InputStream in) {
        StringBuilder line = new StringBuilder();
        try {
            int b;
            while ((b = in.read()) >= 0 && b != '\n') {
                if (b != '\r') {
                    line.append((char) b);
                }
            }
        }
        catch (IOException ex) {
            throw new UncheckedIOException(ex);
        }
        return line.toString();
    }

    /**
     * The status of a request sent raw on its own connection, for paths that
     * java.net.http would normalize.
     */
    int rawStatus(String method, String target, String... headers) {
        try (Socket socket = connect(0)) {
            write(socket, method, target, null, headers);
            String status = readLine(socket.getInputStream());
            return Integer.parseInt(status.split(" ")[1]);
        }
        catch (IOException ex) {
            throw new UncheckedIOException(ex);
        }
    }

    JsonNode json(HttpResponse<String> response) {
        return json(response.body());
    }

    JsonNode json(String body) {
        return JSON.readTree(body);
    }

    private HttpRequest request(String body) {
        return HttpRequest.newBuilder(completions)
            .timeout(Duration.ofSeconds(60))
            .header("Content-Type", "application/json")
            .POST(HttpRequest.BodyPublishers.ofString(body))
            .build();
    }

    /**
     * {@code headers}, or a harmless one when there are none (the builder refuses an
     * empty list).
     */
    private static String[] withNone(String[] headers) {
        return headers.length > 0 ? headers : new String[] { "Accept", "*/*" };
    }

    private <T> HttpResponse<T> send(HttpRequest request, HttpResponse.BodyHandler<T> handler) {
        try {
            return client.send(request, handler);
        }
        catch (IOException ex) {
            throw new UncheckedIOException(ex);
        }
        catch (InterruptedException ex) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(ex);
        }
    }

}
