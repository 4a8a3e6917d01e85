// docs/any-azure-client.md's Java commands run this in place of app.jar (tests/emulator/test_proxy.py): one Resource
// Manager call on Azure's own hostname, through the proxy the JVM properties name.
import java.net.URL;
import javax.net.ssl.HttpsURLConnection;

public class ListGroups {
    public static void main(String[] args) throws Exception {
        URL url = new URL("https://management.azure.com/subscriptions/" + System.getenv("SUBSCRIPTION_ID")
                + "/resourcegroups?api-version=2021-04-01");
        HttpsURLConnection connection = (HttpsURLConnection) url.openConnection();
        connection.setRequestProperty("Authorization", "Bearer " + System.getenv("TOKEN"));
        System.out.println(connection.getResponseCode());
        System.out.println(new String(connection.getInputStream().readAllBytes()));
    }
}
