package dev.specula.sample;

import java.io.IOException;

import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import org.springframework.http.HttpStatus;
import org.springframework.security.access.AccessDeniedException;
import org.springframework.security.web.access.AccessDeniedHandler;
import tools.jackson.databind.ObjectMapper;

/**
 * Answers a valid key that may not call what it called (an Actuator write with a key that
 * is no admin key, {@link AccessRules#ADMIN_WRITES}): 403
 * {@code insufficient_permissions} in OpenAI's shape, naming the property that lists
 * admin keys.
 */
final class OpenAiAccessDeniedHandler implements AccessDeniedHandler {

    static final String INSUFFICIENT_PERMISSIONS = "insufficient_permissions";

    private final ObjectMapper json;

    OpenAiAccessDeniedHandler(ObjectMapper json) {
        this.json = json;
    }

    @Override
    public void handle(HttpServletRequest request, HttpServletResponse response, AccessDeniedException denied)
            throws IOException {
        ErrorResponses.write(response, json,
                OpenAiErrors.error(HttpStatus.FORBIDDEN, OpenAiErrors.INVALID_REQUEST,
                        "This API key may not call " + request.getMethod() + " " + request.getRequestURI()
                                + ": Actuator write operations need a key listed in "
                                + OpenAiAuthenticationEntryPoint.property("admin-api-keys") + " (or "
                                + OpenAiAuthenticationEntryPoint.property("admin-api-keys-file") + ")",
                        null, INSUFFICIENT_PERMISSIONS));
    }

}
