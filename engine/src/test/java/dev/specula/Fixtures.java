package dev.specula;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URISyntaxException;
import java.net.URL;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.stream.Stream;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import dev.specula.engine.ModelPair;
import dev.specula.model.DecoderModel;
import dev.specula.model.RuntimeOptions;
import dev.specula.models.tiny.TinyModels;

/**
 * Test models: tiny random-init exports made by {@code python -m specula_tools fixtures}
 * (committed under src/test/resources/fixtures, each with transformers' reference
 * outputs) and the embedded pair.
 */
public final class Fixtures {

    private static final ObjectMapper JSON = new ObjectMapper();

    private static TinyModels.Pair embedded;

    private Fixtures() {
    }

    /** A directory under src/test/resources/fixtures. */
    public static Path path(String relative) {
        URL url = Fixtures.class.getResource("/fixtures/" + relative);
        if (url == null) {
            throw new IllegalStateException("Missing test fixture fixtures/" + relative
                    + ": regenerate with `cd tools && python -m specula_tools fixtures ../engine/src/test/resources/fixtures`");
        }
        try {
            return Path.of(url.toURI());
        }
        catch (URISyntaxException ex) {
            throw new IllegalStateException(ex);
        }
    }

    public static Path model(String name) {
        return path("models/" + name);
    }

    public static DecoderModel load(String name) {
        return DecoderModel.load(model(name), RuntimeOptions.defaults());
    }

    public static JsonNode json(Path file) {
        try {
            return JSON.readTree(file.toFile());
        }
        catch (IOException ex) {
            throw new UncheckedIOException(ex);
        }
    }

    /**
     * The embedded pair, extracted once per test JVM into target/ (not the user's cache).
     */
    public static synchronized TinyModels.Pair embeddedPair() {
        if (embedded == null) {
            embedded = TinyModels.extract(Path.of("target", "models-tiny-cache"));
        }
        return embedded;
    }

    public static ModelPair embeddedModels() {
        TinyModels.Pair pair = embeddedPair();
        return ModelPair.load(pair.target(), pair.draft(), RuntimeOptions.defaults());
    }

    /** A writable copy of a fixture model, to break or edit. */
    public static Path copyOf(String name, Path into) {
        Path source = model(name);
        Path target = into.resolve(name);
        try (Stream<Path> files = Files.walk(source)) {
            for (Path file : files.sorted(Comparator.naturalOrder()).toList()) {
                Path destination = target.resolve(source.relativize(file).toString());
                if (Files.isDirectory(file)) {
                    Files.createDirectories(destination);
                }
                else {
                    Files.copy(file, destination);
                }
            }
        }
        catch (IOException ex) {
            throw new UncheckedIOException(ex);
        }
        return target;
    }

    public static int[] ints(JsonNode array) {
        int[] values = new int[array.size()];
        for (int i = 0; i < values.length; i++) {
            values[i] = array.get(i).asInt();
        }
        return values;
    }

}
