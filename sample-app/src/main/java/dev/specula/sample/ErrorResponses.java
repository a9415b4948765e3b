package dev.specula.sample;

import java.io.IOException;

import jakarta.servlet.http.HttpServletResponse;
import org.springframework.http.MediaType;
import org.springframework.http.ResponseEntity;
import tools.jackson.databind.ObjectMapper;

/**
 * Writes an OpenAI error response ({@link OpenAiErrors}' status, headers and body) from a
 * servlet filter, which answers before any controller, so no exception handler does it.
 */
final class ErrorResponses {

    private ErrorResponses() {
    }

    static void write(HttpServletResponse response, ObjectMapper json, ResponseEntity<OpenAiJson.ErrorResponse> error)
            throws IOException {
        response.setStatus(error.getStatusCode().value());
        error.getHeaders().forEach((name, values) -> values.forEach((value) -> response.addHeader(name, value)));
        response.setContentType(MediaType.APPLICATION_JSON_VALUE);
        response.setCharacterEncoding("UTF-8");
        response.getOutputStream().write(json.writeValueAsBytes(error.getBody()));
    }

}
