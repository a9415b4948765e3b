package dev.specula;

import com.tngtech.archunit.core.domain.JavaClasses;
import com.tngtech.archunit.core.importer.ClassFileImporter;
import com.tngtech.archunit.core.importer.ImportOption;
import com.tngtech.archunit.lang.syntax.ArchRuleDefinition;
import com.tngtech.archunit.library.dependencies.SlicesRuleDefinition;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The engine's rules, checked on its compiled classes (so fully qualified names count
 * too): it depends on ONNX Runtime, the tokenizers, Jinjava, Jackson and SLF4J only,
 * never on a framework, and its packages form no cycle.
 */
class EngineArchitectureTest {

    private static JavaClasses engine;

    @BeforeAll
    static void importEngine() {
        engine = new ClassFileImporter().withImportOption(ImportOption.Predefined.DO_NOT_INCLUDE_TESTS)
            .importPackages("dev.specula");
    }

    @Test
    void engineUsesNoFrameworkNorServingLibrary() {
        ArchRuleDefinition.noClasses()
            .should()
            .dependOnClassesThat()
            .resideInAnyPackage("org.springframework..", "reactor..", "io.micrometer..", "com.github.benmanes..",
                    "io.github.resilience4j..")
            .because("the engine is plain Java: the serving layer and Spring live in specula-spring-ai")
            .check(engine);
    }

    @Test
    void enginePackagesFormNoCycle() {
        SlicesRuleDefinition.slices().matching("dev.specula.(*)..").should().beFreeOfCycles().check(engine);
    }

}
