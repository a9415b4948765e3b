package dev.specula.sample;

import java.io.IOException;

import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import org.springframework.http.HttpStatus;
import org.springframework.security.web.firewall.RequestRejectedException;
import org.springframework.security.web.firewall.RequestRejectedHandler;
import tools.jackson.databind.ObjectMapper;

/**
 * Answers a request Spring Security's firewall refuses (an encoded slash or dot, a
 * {@code ..} segment, a {@code ;} path parameter, a header with control characters): 400
 * {@code invalid_url} in OpenAI's shape. The firewall's own message is not echoed: it may
 * quote a header, the {@code Authorization} header included.
 */
final class RejectedRequests implements RequestRejectedHandler {

    static final String INVALID_URL = "invalid_url";

    private final ObjectMapper json;

    RejectedRequests(ObjectMapper json) {
        this.json = json;
    }

    @Override
    public void handle(HttpServletRequest request, HttpServletResponse response, RequestRejectedException rejected)
            throws IOException {
        ErrorResponses.write(response, json, OpenAiErrors.error(HttpStatus.BAD_REQUEST, OpenAiErrors.INVALID_REQUEST,
                "The request was refused: its path or headers hold something the gateway does not accept (an encoded "
                        + "'/', '.' or '%', a '..' or '//' segment, a ';' parameter, control characters in a header). "
                        + "Send a plain, normalized path such as /v1/chat/completions.",
                null, INVALID_URL));
    }

}
