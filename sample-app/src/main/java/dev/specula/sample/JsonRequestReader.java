package dev.specula.sample;

import java.io.IOException;

import jakarta.servlet.http.HttpServletRequest;
import org.springframework.util.unit.DataSize;
import tools.jackson.core.JacksonException;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.ObjectMapper;

import dev.specula.request.InvalidRequestException;

/**
 * Reads a request's JSON body itself (any content type), at most
 * {@code specula.gateway.max-request-bytes} of it, so that an oversized body is refused
 * before it is parsed and malformed JSON is reported in OpenAI's error shape.
 */
final class JsonRequestReader {

    private final ObjectMapper json;

    /** Largest body read ({@link GatewayProperties#resolvedMaxRequestBytes()}). */
    private final DataSize maxRequestBytes;

    /**
     * The field a body needs at least, as error messages name it: "messages", "prompt".
     */
    private final String requiredField;

    JsonRequestReader(ObjectMapper json, GatewayProperties properties, String requiredField) {
        this.json = json;
        this.maxRequestBytes = properties.resolvedMaxRequestBytes();
        this.requiredField = requiredField;
    }

    /**
     * The body as JSON.
     * @throws InvalidRequestException with code {@code request_too_large} (413) for a
     * body over the limit, else for an empty or malformed body (400)
     */
    JsonNode read(HttpServletRequest http) {
        return parse(bytes(http));
    }

    /**
     * The body, refused unread when its Content-Length is over the limit, else read up to
     * one byte past it.
     */
    private byte[] bytes(HttpServletRequest http) {
        long limit = maxRequestBytes.toBytes();
        if (http.getContentLengthLong() > limit) {
            throw tooLarge();
        }
        byte[] body;
        try {
            body = http.getInputStream().readNBytes((int) Math.min(limit + 1, Integer.MAX_VALUE - 8));
        }
        catch (IOException ex) {
            throw new InvalidRequestException(null, "The request body could not be read: " + ex.getMessage());
        }
        if (body.length > limit) {
            throw tooLarge();
        }
        return body;
    }

    private InvalidRequestException tooLarge() {
        String property = GatewayProperties.CONFIG_PREFIX + ".max-request-bytes";
        return new InvalidRequestException(null, OpenAiErrors.REQUEST_TOO_LARGE,
                "The request body is larger than the gateway's limit of " + readable(maxRequestBytes) + " (" + property
                        + "): send less in \"" + requiredField + "\", or raise " + property);
    }

    /** 4MB, 512KB or 1000B. */
    private static String readable(DataSize size) {
        long bytes = size.toBytes();
        if (bytes > 0 && bytes % DataSize.ofMegabytes(1).toBytes() == 0) {
            return size.toMegabytes() + "MB";
        }
        return bytes > 0 && bytes % 1024 == 0 ? size.toKilobytes() + "KB" : bytes + "B";
    }

    private JsonNode parse(byte[] body) {
        if (body == null || body.length == 0) {
            throw new InvalidRequestException(null, "The request body is empty: send a JSON object with \""
                    + requiredField + "\" (Content-Type: application/json)");
        }
        try {
            return json.readTree(body);
        }
        catch (JacksonException ex) {
            throw new InvalidRequestException(null, "The request body is not valid JSON (" + ex.getOriginalMessage()
                    + "): send a JSON object with Content-Type: application/json");
        }
    }

}
