package cardsuite.simbridge;

import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.net.MalformedURLException;
import java.net.URL;
import java.net.URLClassLoader;
import java.util.ArrayList;
import java.util.Enumeration;
import java.util.List;
import java.util.jar.JarEntry;
import java.util.jar.JarFile;

/**
 * Loads one card's applet classes from the applet class path, instrumented by
 * {@link PersistentWriteInstrumenter}. Applet classes are looked up here first, so each card gets its own copy
 * (its own static fields, like a separate card); the Java Card API, jCardSim and the bridge always come from the
 * parent, the bridge's own loader.
 */
final class AppletClassLoader extends URLClassLoader {
    private static final String[] PARENT_ONLY = {
        "java.", "javax.", "jdk.", "sun.", "javacard.", "javacardx.", "com.licel.", "org.bouncycastle.",
        "org.objectweb.asm.", "cardsuite.simbridge.",
    };

    static {
        registerAsParallelCapable();
    }

    AppletClassLoader(String classPath) {
        super(toUrls(classPath), AppletClassLoader.class.getClassLoader());
    }

    @Override
    protected Class<?> loadClass(String name, boolean resolve) throws ClassNotFoundException {
        synchronized (getClassLoadingLock(name)) {
            Class<?> loaded = findLoadedClass(name);
            if (loaded == null && !isParentOnly(name)) {
                URL classFile = findResource(name.replace('.', '/') + ".class");
                if (classFile != null) {
                    loaded = defineInstrumented(name, classFile);
                }
            }
            if (loaded == null) {
                return super.loadClass(name, resolve);
            }
            if (resolve) {
                resolveClass(loaded);
            }
            return loaded;
        }
    }

    /** The names of the top-level classes of one Java package in the applet class path (directories and jars). */
    List<String> classNamesIn(String javaPackage) {
        String path = javaPackage.replace('.', '/') + "/";
        List<String> names = new ArrayList<>();
        for (URL url : getURLs()) {
            File entry = new File(url.getPath());
            if (entry.isDirectory()) {
                String[] files = new File(entry, path).list();
                for (String file : files == null ? new String[0] : files) {
                    addClassName(names, javaPackage + "." + file);
                }
            } else {
                try (JarFile jar = new JarFile(entry)) {
                    for (Enumeration<JarEntry> e = jar.entries(); e.hasMoreElements();) {
                        String name = e.nextElement().getName();
                        if (name.startsWith(path) && name.indexOf('/', path.length()) < 0) {
                            addClassName(names, javaPackage + "." + name.substring(path.length()));
                        }
                    }
                } catch (IOException e) {
                    // not a jar: nothing of this package there
                }
            }
        }
        return names;
    }

    private static void addClassName(List<String> names, String file) {
        if (file.endsWith(".class") && file.indexOf('$') < 0) {
            names.add(file.substring(0, file.length() - ".class".length()));
        }
    }

    private Class<?> defineInstrumented(String name, URL classFile) throws ClassNotFoundException {
        byte[] original;
        try (InputStream in = classFile.openStream()) {
            original = in.readAllBytes();
        } catch (IOException e) {
            throw new ClassNotFoundException("cannot read " + classFile, e);
        }
        byte[] instrumented;
        try {
            instrumented = AllocationMeter.instrument(PersistentWriteInstrumenter.instrument(original));
        } catch (RuntimeException e) {
            throw new ClassNotFoundException("cannot instrument " + classFile + ": " + e.getMessage(), e);
        }
        return defineClass(name, instrumented, 0, instrumented.length);
    }

    private static boolean isParentOnly(String name) {
        for (String prefix : PARENT_ONLY) {
            if (name.startsWith(prefix)) {
                return true;
            }
        }
        return false;
    }

    private static URL[] toUrls(String classPath) {
        List<URL> urls = new ArrayList<>();
        for (String entry : classPath.split(File.pathSeparator)) {
            if (entry.isEmpty()) {
                continue;
            }
            File file = new File(entry);
            if (!file.exists()) {
                throw new IllegalArgumentException("applet class path entry does not exist: " + entry);
            }
            try {
                urls.add(file.toURI().toURL());
            } catch (MalformedURLException e) {
                throw new IllegalArgumentException("bad applet class path entry: " + entry, e);
            }
        }
        return urls.toArray(new URL[0]);
    }
}
