package dev.specula.autoconfigure;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import dev.specula.models.tiny.TinyModels;

/** The embedded pair on disk, and broken copies of it for the failure tests. */
final class TestModels {

    /** Specula's auto-configurations: models, serving, chat. */
    static final Class<?>[] AUTO_CONFIGURATIONS = { SpeculaRenamedPropertiesAutoConfiguration.class,
            SpeculaModelsAutoConfiguration.class, SpeculaServingAutoConfiguration.class,
            SpeculaChatAutoConfiguration.class };

    private static final ObjectMapper JSON = new ObjectMapper();

    private static TinyModels.Pair pair;

    private TestModels() {
    }

    /** {@link #AUTO_CONFIGURATIONS} and {@code more}. */
    static Class<?>[] autoConfigurations(Class<?>... more) {
        Class<?>[] all = java.util.Arrays.copyOf(AUTO_CONFIGURATIONS, AUTO_CONFIGURATIONS.length + more.length);
        System.arraycopy(more, 0, all, AUTO_CONFIGURATIONS.length, more.length);
        return all;
    }

    static synchronized TinyModels.Pair pair() {
        if (pair == null) {
            pair = TinyModels.extract();
        }
        return pair;
    }

    /**
     * A copy of the embedded target whose model.onnx is not an ONNX file (and without its
     * packed graph, which batching would otherwise load instead).
     */
    static Path corruptTarget(Path directory) {
        Path copy = copy(pair().target(), directory.resolve("corrupt-target"));
        write(copy.resolve("model.onnx"), "this is not an ONNX model");
        try {
            Files.deleteIfExists(copy.resolve("model_packed.onnx"));
        }
        catch (java.io.IOException ex) {
            throw new java.io.UncheckedIOException(ex);
        }
        return copy;
    }

    /**
     * A copy of the embedded draft whose tokenizer.json has one token more than the
     * target's.
     */
    static Path draftWithExtraToken(Path directory) {
        Path copy = copy(pair().draft(), directory.resolve("draft-extra-token"));
        Path tokenizer = copy.resolve("tokenizer.json");
        try {
            ObjectNode root = (ObjectNode) JSON.readTree(tokenizer.toFile());
            int maxId = -1;
            for (var entry : root.path("model").path("vocab").properties()) {
                maxId = Math.max(maxId, entry.getValue().asInt());
            }
            for (var added : root.path("added_tokens")) {
                maxId = Math.max(maxId, added.path("id").asInt());
            }
            ObjectNode token = JSON.createObjectNode()
                .put("id", maxId + 1)
                .put("content", "<|specula-extra|>")
                .put("single_word", false)
                .put("lstrip", false)
                .put("rstrip", false)
                .put("normalized", false)
                .put("special", false);
            root.withArray("added_tokens").add(token);
            JSON.writeValue(tokenizer.toFile(), root);
        }
        catch (IOException ex) {
            throw new UncheckedIOException(ex);
        }
        return copy;
    }

    /**
     * A stand-in GRIFFIN feature head for the embedded target ({@link FeatureHeadGraph}),
     * written once into {@code directory}/griffin.
     */
    static Path featureHead(Path directory) {
        return featureHead(directory.resolve("griffin"), 384);
    }

    /**
     * A stand-in feature head whose hidden states have {@code hidden} values (the
     * embedded target's have 384), in {@code directory}.
     */
    static Path featureHead(Path directory, int hidden) {
        return new FeatureHeadGraph(hidden, 4096, 2, 64).writeTo(directory, pair().target());
    }

    static Path copy(Path source, Path target) {
        try (Stream<Path> files = Files.list(source)) {
            Files.createDirectories(target);
            for (Path file : files.toList()) {
                Files.copy(file, target.resolve(file.getFileName()));
            }
            return target;
        }
        catch (IOException ex) {
            throw new UncheckedIOException(ex);
        }
    }

    /** Rewrites {@code directory}'s config.json with {@code edit} applied. */
    static void editConfig(Path directory, java.util.function.Consumer<ObjectNode> edit) {
        Path config = directory.resolve("config.json");
        try {
            ObjectNode root = (ObjectNode) JSON.readTree(config.toFile());
            edit.accept(root);
            JSON.writeValue(config.toFile(), root);
        }
        catch (IOException ex) {
            throw new UncheckedIOException(ex);
        }
    }

    private static void write(Path file, String text) {
        try {
            Files.writeString(file, text, StandardCharsets.UTF_8);
        }
        catch (IOException ex) {
            throw new UncheckedIOException(ex);
        }
    }

}
