package dev.specula.sample;

import java.util.LinkedHashMap;
import java.util.Map;

import org.springframework.http.ResponseEntity;

/**
 * Which backend served a chat completion or a legacy completion: the local engine or the
 * overflow remote. It is said in the {@value #HEADER} header and as
 * {@code speculation.backend} in the answer (a stream: on its {@code finish_reason}
 * chunk).
 */
final class Backends {

    static final String HEADER = "X-Specula-Backend";

    static final String LOCAL = "local";

    static final String OVERFLOW = "overflow";

    private Backends() {
    }

    /**
     * {@code answer}, a local engine's, with its backend said in the {@value #HEADER}
     * header.
     */
    static ResponseEntity<?> local(ResponseEntity<?> answer) {
        return ResponseEntity.status(answer.getStatusCode())
            .headers(answer.getHeaders())
            .header(HEADER, LOCAL)
            .body(answer.getBody());
    }

    /**
     * The {@code speculation} object with {@code backend} added: {@code figures} (the
     * local decoding's figures, or null when there are none) and then the backend.
     */
    static Map<String, Object> speculation(Map<String, Object> figures, String backend) {
        Map<String, Object> speculation = figures == null ? new LinkedHashMap<>() : new LinkedHashMap<>(figures);
        speculation.put("backend", backend);
        return speculation;
    }

}
