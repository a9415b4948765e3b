package dev.specula.sample;

import java.io.IOException;

import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import org.springframework.http.HttpHeaders;
import org.springframework.http.HttpStatus;
import org.springframework.security.authentication.BadCredentialsException;
import org.springframework.security.core.AuthenticationException;
import org.springframework.security.web.AuthenticationEntryPoint;
import tools.jackson.databind.ObjectMapper;

/**
 * Answers a request without a valid API key: 401 {@code invalid_api_key} in OpenAI's
 * shape with {@code WWW-Authenticate: Bearer}, saying how to send a key (no key) or that
 * the key is wrong (a {@link BadCredentialsException}). The key is never echoed.
 */
final class OpenAiAuthenticationEntryPoint implements AuthenticationEntryPoint {

    static final String INVALID_API_KEY = "invalid_api_key";

    private final ObjectMapper json;

    OpenAiAuthenticationEntryPoint(ObjectMapper json) {
        this.json = json;
    }

    @Override
    public void commence(HttpServletRequest request, HttpServletResponse response, AuthenticationException failure)
            throws IOException {
        String message = (failure instanceof BadCredentialsException)
                ? "Incorrect API key provided. Send a key the server's operator issued (" + property("api-keys")
                        + ") as 'Authorization: Bearer <key>'."
                : "You didn't provide an API key. Send it in the Authorization header as "
                        + "'Authorization: Bearer <key>'; the server's operator issues keys (" + property("api-keys")
                        + ").";
        response.setHeader(HttpHeaders.WWW_AUTHENTICATE, "Bearer");
        ErrorResponses.write(response, json, OpenAiErrors.error(HttpStatus.UNAUTHORIZED, OpenAiErrors.INVALID_REQUEST,
                message, null, INVALID_API_KEY));
    }

    static String property(String name) {
        return GatewayProperties.CONFIG_PREFIX + "." + name;
    }

}
