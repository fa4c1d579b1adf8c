package cardsuite.simbridge.gp;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The GP registry of one card (GP Card Spec §5.2 and §6.3): its Executable Load Files with their modules, and its
 * applications with life cycle and privileges. It also holds what the *build* offers the simulator, since the card
 * runs the build's classes instead of CAP bytecode: which Java package is a package AID ("loadable"), and which
 * class an applet AID names. Applets created by {@code SimulatedCard.install} appear as applications of
 * pre-loaded load files once their Java package is registered as loadable.
 */
public final class Registry {
    /** Life cycle codings (GP Card Spec §11.1.1, Tables 11-3 and 11-4). */
    public static final int LOADED = 0x01;
    public static final int INSTALLED = 0x03;
    public static final int SELECTABLE = 0x07;
    /** A security domain's PERSONALIZED state (Table 11-5), set by SET STATUS from SELECTABLE. */
    public static final int PERSONALIZED = 0x0F;
    public static final int LOCKED = 0x80;
    /** Privilege byte 1 b3: Card Reset, the default-selected application on the basic interface. */
    static final int CARD_RESET = 0x04;
    /** Privilege byte 1 b8: Security Domain (§6.6.1, Table 6-1). */
    static final int SECURITY_DOMAIN = 0x80;
    /** Privilege byte 1 b7, with b8: DAP Verification ('C0', Table 11-7). */
    static final int DAP_VERIFICATION = 0x40;
    /** Privilege byte 1 b1, with b8 and b7: Mandated DAP Verification ('C1', Table 11-7). */
    static final int MANDATED_DAP = 0x01;
    /**
     * The card's own Security Domain package and its module (as cards with GP's AIDs expose them, and as gp
     * --domain installs from): an instance with the Security Domain privilege is a supplementary security domain.
     */
    public static final byte[] SD_PACKAGE = Bytes.fromHex("A0000001515350");
    public static final byte[] SD_MODULE = Bytes.fromHex("A000000151535041");

    /** An Executable Load File on the card. */
    public static final class LoadFile {
        public final byte[] aid;
        public final int major;
        public final int minor;
        public final String javaPackage;
        final List<byte[]> modules;
        final List<CapFile.PackageRef> imports;
        /** true for a package that was on the card from the start (pre-installed applets, {@code preload}). */
        public final boolean preloaded;
        /** The associated security domain (§6.3.1), null for the ISD; changed by INSTALL [for extradition]. */
        byte[] domain;

        LoadFile(byte[] aid, int major, int minor, String javaPackage, List<byte[]> modules,
                 List<CapFile.PackageRef> imports, boolean preloaded) {
            this.aid = aid.clone();
            this.major = major;
            this.minor = minor;
            this.javaPackage = javaPackage;
            this.modules = new ArrayList<>(modules);
            this.imports = imports;
            this.preloaded = preloaded;
        }

        public List<byte[]> modules() {
            return Collections.unmodifiableList(modules);
        }
    }

    /** An application instance. */
    public static final class Application {
        public final byte[] aid;
        byte[] loadFile;
        public final byte[] module;
        public final String className;
        int lifeCycle;
        byte[] privileges;
        /** The associated security domain (§6.3.1), null for the ISD; changed by INSTALL [for extradition]. */
        byte[] domain;

        Application(byte[] aid, byte[] loadFile, byte[] module, String className, int lifeCycle, byte[] privileges) {
            this.aid = aid.clone();
            this.loadFile = loadFile == null ? null : loadFile.clone();
            this.module = module.clone();
            this.className = className;
            this.lifeCycle = lifeCycle;
            this.privileges = privileges.clone();
        }

        public int lifeCycle() {
            return lifeCycle;
        }

        public byte[] loadFile() {
            return loadFile == null ? null : loadFile.clone();
        }

        /** The Card Reset privilege (§6.6.1, Table 6-1 byte 1 b3): the application selected at power-up. */
        boolean defaultSelected() {
            return (privileges[0] & CARD_RESET) != 0;
        }

        public byte[] privileges() {
            return privileges.clone();
        }

        /** The Security Domain privilege: a supplementary security domain of the card manager, no applet. */
        boolean securityDomain() {
            return (privileges[0] & SECURITY_DOMAIN) != 0;
        }

        boolean selectable() {
            return (lifeCycle & LOCKED) == 0 && (lifeCycle & SELECTABLE) == SELECTABLE;
        }

        /** A security domain with the DAP Verification privilege: it checks the DAP blocks of its loads. */
        boolean verifiesDap() {
            return securityDomain() && (privileges[0] & DAP_VERIFICATION) != 0;
        }

        /**
         * Mandated DAP Verification, in force once the domain is PERSONALIZED (§9.3.5): it checks every load on the
         * card, whichever domain the load goes to.
         */
        boolean mandatesDap() {
            return verifiesDap() && (privileges[0] & MANDATED_DAP) != 0 && lifeCycle == PERSONALIZED;
        }
    }

    private static final class Loadable {
        final String javaPackage;
        final int major;
        final int minor;

        Loadable(String javaPackage, int major, int minor) {
            this.javaPackage = javaPackage;
            this.major = major;
            this.minor = minor;
        }
    }

    private final Map<String, Loadable> loadables = new LinkedHashMap<>();
    private final Map<String, String> appletClasses = new LinkedHashMap<>();
    private final Map<String, LoadFile> loadFiles = new LinkedHashMap<>();
    private final Map<String, Application> applications = new LinkedHashMap<>();

    public Registry() {
        List<byte[]> modules = new ArrayList<>();
        modules.add(SD_MODULE);
        loadFiles.put(key(SD_PACKAGE), new LoadFile(SD_PACKAGE, 1, 0, null, modules, Collections.emptyList(), true));
    }

    static String key(byte[] aid) {
        return Bytes.hex(aid);
    }

    // ---------------------------------------------------------------- what the build offers

    public void registerLoadable(byte[] packageAid, String javaPackage, int major, int minor) {
        checkAid(packageAid);
        if (javaPackage == null || javaPackage.isEmpty()) {
            throw new IllegalArgumentException("a loadable needs its Java package");
        }
        loadables.put(key(packageAid), new Loadable(javaPackage, major, minor));
        adoptPreinstalled();
    }

    public void registerAppletClass(byte[] appletAid, String className) {
        checkAid(appletAid);
        appletClasses.put(key(appletAid), className);
        adoptPreinstalled();
    }

    /** Marks a registered package as present from the start (a library the pre-installed applets import). */
    public void preload(byte[] packageAid) {
        Loadable loadable = loadables.get(key(packageAid));
        if (loadable == null) {
            throw new IllegalArgumentException("package " + key(packageAid) + " is not registered as loadable");
        }
        ensurePreloaded(packageAid, loadable);
    }

    String javaPackageOf(byte[] packageAid) {
        Loadable loadable = loadables.get(key(packageAid));
        return loadable == null ? null : loadable.javaPackage;
    }

    String registeredAppletClass(byte[] appletAid) {
        return appletClasses.get(key(appletAid));
    }

    // ---------------------------------------------------------------- card content

    public Collection<LoadFile> loadFiles() {
        return Collections.unmodifiableCollection(loadFiles.values());
    }

    public Collection<Application> applications() {
        return Collections.unmodifiableCollection(applications.values());
    }

    public LoadFile loadFile(byte[] aid) {
        return loadFiles.get(key(aid));
    }

    public Application application(byte[] aid) {
        return applications.get(key(aid));
    }

    /** The application a SELECT by this (possibly partial) AID reaches: exact match first, then a prefix. */
    Application applicationForSelect(byte[] aidOrPrefix) {
        Application exact = application(aidOrPrefix);
        if (exact != null) {
            return exact;
        }
        for (Application app : applications.values()) {
            if (startsWith(app.aid, aidOrPrefix)) {
                return app;
            }
        }
        return null;
    }

    /** The application holding the Card Reset privilege, or null (then the ISD is the default). */
    Application defaultSelected() {
        for (Application app : applications.values()) {
            if (app.defaultSelected()) {
                return app;
            }
        }
        return null;
    }

    /** An applet created at start by {@code SimulatedCard.install}: SELECTABLE, no privileges. */
    public void addPreinstalled(byte[] aid, String className) {
        byte[] module = aid;
        for (Map.Entry<String, String> entry : appletClasses.entrySet()) {
            if (entry.getValue().equals(className)) {
                module = Bytes.fromHex(entry.getKey());
                break;
            }
        }
        applications.put(key(aid), new Application(aid, null, module, className, SELECTABLE, new byte[1]));
        adoptPreinstalled();
    }

    void addLoadFile(LoadFile loadFile) {
        loadFiles.put(key(loadFile.aid), loadFile);
    }

    void addApplication(Application app) {
        applications.put(key(app.aid), app);
    }

    void removeApplication(byte[] aid) {
        applications.remove(key(aid));
    }

    /** Applications and load files associated with this security domain (§6.3.1). */
    int associatedWith(byte[] domainAid) {
        int count = 0;
        for (Application app : applications.values()) {
            count += app.domain != null && Arrays.equals(app.domain, domainAid) ? 1 : 0;
        }
        for (LoadFile file : loadFiles.values()) {
            count += file.domain != null && Arrays.equals(file.domain, domainAid) ? 1 : 0;
        }
        return count;
    }

    /** The supplementary security domain with this AID, or null. */
    /** The supplementary security domains, in registry order. */
    List<Application> securityDomains() {
        List<Application> list = new ArrayList<>();
        for (Application app : applications.values()) {
            if (app.securityDomain()) {
                list.add(app);
            }
        }
        return list;
    }

    Application securityDomain(byte[] aid) {
        Application app = application(aid);
        return app != null && app.securityDomain() ? app : null;
    }

    void removeLoadFile(byte[] aid) {
        loadFiles.remove(key(aid));
    }

    List<Application> applicationsOf(byte[] loadFileAid) {
        List<Application> list = new ArrayList<>();
        for (Application app : applications.values()) {
            if (app.loadFile != null && Arrays.equals(app.loadFile, loadFileAid)) {
                list.add(app);
            }
        }
        return list;
    }

    /** Load files that import this one (GP Card Spec §11.2.2.1: such a load file cannot be deleted). */
    List<LoadFile> dependentsOf(byte[] loadFileAid) {
        List<LoadFile> list = new ArrayList<>();
        for (LoadFile file : loadFiles.values()) {
            for (CapFile.PackageRef ref : file.imports) {
                if (Arrays.equals(ref.aid, loadFileAid)) {
                    list.add(file);
                }
            }
        }
        return list;
    }

    /** Pre-installed applications whose Java package became known get their (pre-loaded) load file. */
    private void adoptPreinstalled() {
        for (Application app : applications.values()) {
            if (app.loadFile != null) {
                continue;
            }
            String javaPackage = packageOfClass(app.className);
            for (Map.Entry<String, Loadable> entry : loadables.entrySet()) {
                if (entry.getValue().javaPackage.equals(javaPackage)) {
                    byte[] packageAid = Bytes.fromHex(entry.getKey());
                    LoadFile file = ensurePreloaded(packageAid, entry.getValue());
                    app.loadFile = file.aid.clone();
                    if (!containsAid(file.modules, app.module)) {
                        file.modules.add(app.module.clone());
                    }
                }
            }
        }
    }

    private LoadFile ensurePreloaded(byte[] packageAid, Loadable loadable) {
        LoadFile file = loadFiles.get(key(packageAid));
        if (file == null) {
            List<byte[]> modules = new ArrayList<>();
            for (Map.Entry<String, String> entry : appletClasses.entrySet()) {
                if (packageOfClass(entry.getValue()).equals(loadable.javaPackage)) {
                    modules.add(Bytes.fromHex(entry.getKey()));
                }
            }
            file = new LoadFile(packageAid, loadable.major, loadable.minor, loadable.javaPackage, modules,
                    Collections.emptyList(), true);
            loadFiles.put(key(packageAid), file);
        }
        return file;
    }

    static String packageOfClass(String className) {
        int dot = className.lastIndexOf('.');
        return dot < 0 ? "" : className.substring(0, dot);
    }

    static boolean containsAid(List<byte[]> aids, byte[] aid) {
        for (byte[] candidate : aids) {
            if (Arrays.equals(candidate, aid)) {
                return true;
            }
        }
        return false;
    }

    static boolean startsWith(byte[] aid, byte[] prefix) {
        return prefix.length <= aid.length && Arrays.equals(Arrays.copyOf(aid, prefix.length), prefix);
    }

    private static void checkAid(byte[] aid) {
        if (aid == null || aid.length < 5 || aid.length > 16) {
            throw new IllegalArgumentException("an AID has 5 to 16 bytes");
        }
    }
}
