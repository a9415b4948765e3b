package dev.specula;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.net.URISyntaxException;
import java.net.URL;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
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

    /**
     * The first {@code most} prompt texts of
     * src/test/resources/prompts/code-prompts.jsonl (its {@code prompt} fields): Python
     * code to complete.
     */
    public static List<String> codePrompts(int most) {
        List<String> texts = new ArrayList<>();
        try (InputStream in = Fixtures.class.getResourceAsStream("/prompts/code-prompts.jsonl");
                BufferedReader reader = new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8))) {
            String line;
            while ((line = reader.readLine()) != null && texts.size() < most) {
                texts.add(JSON.readTree(line).path("prompt").asText());
            }
        }
        catch (IOException ex) {
            throw new UncheckedIOException(ex);
        }
        return texts;
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
