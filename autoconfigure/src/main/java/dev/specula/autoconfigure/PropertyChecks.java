package dev.specula.autoconfigure;

import java.time.Duration;

import org.springframework.boot.context.properties.source.InvalidConfigurationPropertyValueException;

/**
 * Range checks of {@code specula.*} values. A value out of range throws Boot's
 * {@link InvalidConfigurationPropertyValueException}, whose failure analyzer prints the
 * property, the value, where it was set and the reason (what is allowed).
 */
final class PropertyChecks {

    private PropertyChecks() {
    }

    static InvalidConfigurationPropertyValueException invalid(String property, Object value, String allowed) {
        return new InvalidConfigurationPropertyValueException(property, value, "It must be " + allowed + ".");
    }

    static InvalidConfigurationPropertyValueException invalid(String property, Object value, String allowed,
            Throwable cause) {
        return new InvalidConfigurationPropertyValueException(property, value, "It must be " + allowed + ".", cause);
    }

    static void requireLocation(String property, String location) {
        if (location != null && location.isBlank()) {
            throw invalid(property, location,
                    "a model directory or its model.onnx: a path, file:... or classpath:..., or unset");
        }
    }

    /**
     * A graph file is a relative path to an .onnx file inside its model's location, and
     * needs that location.
     */
    static void requireGraphFile(String property, String file, String locationProperty, String location) {
        if (file == null) {
            return;
        }
        java.nio.file.Path path;
        try {
            path = java.nio.file.Path.of(file.trim());
        }
        catch (java.nio.file.InvalidPathException ex) {
            throw invalid(property, file, "a relative path to an .onnx file inside the model location", ex);
        }
        if (file.isBlank() || path.isAbsolute() || !path.normalize().equals(path) || path.startsWith("..")
                || !path.toString().endsWith(".onnx")) {
            throw invalid(property, file,
                    "a relative path to an .onnx file inside the model location, such as onnx/model_q4.onnx");
        }
        if (location == null) {
            throw invalid(property, file, "set together with " + locationProperty
                    + " (the directory it is relative to); unset it to use the embedded pair");
        }
    }

    static void requireAtLeast(String property, long value, long min, String allowed) {
        requireRange(property, value, value, min, Long.MAX_VALUE, allowed);
    }

    static void requireRange(String property, Object shown, long value, long min, long max, String allowed) {
        if (value < min || value > max) {
            throw invalid(property, shown, allowed);
        }
    }

    static void requirePositive(String property, Duration value, String allowed) {
        if (value == null || value.isNegative() || value.isZero()) {
            throw invalid(property, shown(value), allowed);
        }
    }

    static void requireNotNegative(String property, Duration value, String allowed) {
        if (value == null || value.isNegative()) {
            throw invalid(property, shown(value), allowed);
        }
    }

    static void requireAtLeastOneMilli(String property, Duration value) {
        if (value == null || value.toMillis() < 1) {
            throw invalid(property, shown(value), "a duration of at least 1ms, e.g. 30s");
        }
    }

    static void requirePercentage(String property, float value) {
        if (!(value > 0 && value <= 100)) {
            throw invalid(property, value, "a percentage in (0, 100], 0 excluded");
        }
    }

    /**
     * A duration as it is written in properties, in its largest whole unit ("-5s", "10m",
     * "250ms").
     */
    static String shown(Duration value) {
        if (value == null) {
            return null;
        }
        if (value.isZero()) {
            return "0s";
        }
        if (value.toNanos() % 1_000_000 != 0) {
            return value.toString();
        }
        long millis = value.toMillis();
        long[] sizes = { 86_400_000, 3_600_000, 60_000, 1000 };
        String[] units = { "d", "h", "m", "s" };
        for (int i = 0; i < sizes.length; i++) {
            if (millis % sizes[i] == 0) {
                return millis / sizes[i] + units[i];
            }
        }
        return millis + "ms";
    }

}
