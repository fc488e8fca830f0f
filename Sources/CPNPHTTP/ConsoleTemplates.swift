import Mustache

/// The console's pages, as Mustache templates kept in the binary (one file to deploy). Each page
/// extends `layout`; `{{x}}` escapes HTML.
enum ConsoleTemplates {
    static func library() throws -> MustacheLibrary {
        var library = MustacheLibrary()
        for (name, text) in templates { try library.register(text, named: name) }
        return library
    }

    static let templates: [(String, String)] = [
        ("layout", layout), ("login", login), ("orders", orders), ("order", order), ("links", links), ("live", live), ("missing", missing),
        ("portal-orders", portalOrders), ("portal-order", portalOrder), ("portal-catalog", portalCatalog), ("portal-template", portalTemplate),
        ("portal-missing", portalMissing), ("portal-sign-in", portalSignIn), ("clauses", clauses), ("timeline", timeline),
    ]

    /// An order's CPD clause by clause (``Console/documentContext(requested:offered:agreed:)``).
    static let clauses = """
        <section><h2>Connectivity Provisioning Document, clause by clause</h2>
        {{#hasGaps}}<p>The offer differs from the request:</p><ul>{{#gaps}}<li><code>{{text}}</code></li>{{/gaps}}</ul>{{/hasGaps}}
        {{#satisfies}}<p class="muted">The offer satisfies the request.</p>{{/satisfies}}
        <table id="clauses"><tr><th>Clause</th><th>Requested</th><th>Offered</th><th>Agreed</th></tr>
        {{#clauses}}<tr><th>{{clause}}</th><td><pre>{{requested}}</pre></td><td class="{{#offerDiffers}}differs{{/offerDiffers}}"><pre>{{offered}}</pre></td>
        <td class="{{#agreementDiffers}}differs{{/agreementDiffers}}"><pre>{{agreed}}</pre></td></tr>{{/clauses}}
        </table></section>
        """

    /// An order's audit trail (``Console/timeline(_:of:)``).
    static let timeline = """
        <table id="timeline"><tr><th>At</th><th>From</th><th>To</th><th>Event</th></tr>
        {{#timeline}}<tr><td>{{at}}</td><td class="state">{{from}}</td><td class="state">{{#changed}}<b>{{to}}</b>{{/changed}}{{^changed}}{{to}}{{/changed}}</td><td>{{event}}</td></tr>{{/timeline}}
        </table>
        """

    static let layout = """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><title>cpnpd · {{$title}}console{{/title}}</title>{{$head}}{{/head}}
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <style>
        body { font: 14px/1.4 system-ui, sans-serif; margin: 0; color: #1d2733; background: #f6f7f9; }
        header { background: #1d2733; color: #fff; padding: 10px 20px; display: flex; gap: 20px; align-items: center; }
        header a { color: #cfd8e3; text-decoration: none; } header a.on { color: #fff; font-weight: 600; }
        header .brand { font-weight: 700; color: #fff; } header form { margin-left: auto; }
        main { padding: 20px; max-width: 1400px; }
        table { border-collapse: collapse; width: 100%; background: #fff; }
        th, td { text-align: left; padding: 6px 8px; border-bottom: 1px solid #e3e7ec; vertical-align: top; }
        th { background: #eef1f5; } pre { margin: 0; white-space: pre-wrap; font-size: 12px; }
        .state { font-family: monospace; } .held { color: #a15c00; font-weight: 600; }
        .differs { background: #fff4d6; } .error { color: #b00020; } .done { color: #0a6b2d; font-weight: 600; }
        .bar { background: #e3e7ec; width: 300px; height: 14px; border-radius: 3px; overflow: hidden; }
        .bar div { background: #2f7dd1; height: 100%; } .bar .high { background: #d14b2f; }
        form.inline { display: inline; } button { cursor: pointer; } .muted { color: #66727f; }
        section { margin-bottom: 24px; }
        </style></head><body>
        <header><span class="brand">cpnpd</span>
        {{#signedIn}}
        <a href="/console/orders" class="{{#orders}}on{{/orders}}">Orders</a>
        <a href="/console/links" class="{{#links}}on{{/links}}">Links</a>
        <a href="/console/live" class="{{#live}}on{{/live}}">Live</a>
        <form method="post" action="/console/logout"><input type="hidden" name="csrf" value="{{csrf}}"><button>Sign out</button></form>
        {{/signedIn}}
        {{#portalUser}}
        <a href="/portal/orders" class="{{#myOrders}}on{{/myOrders}}">My orders</a>
        <a href="/portal/catalog" class="{{#catalog}}on{{/catalog}}">Catalogue</a>
        <span style="margin-left: auto" id="customer">signed in as {{portalUser}} (client certificate)</span>
        {{/portalUser}}
        </header>
        <main>{{$body}}{{/body}}</main></body></html>
        """

    static let login = """
        {{<layout}}{{$title}}sign in{{/title}}{{$body}}
        <h1>Sign in</h1>
        <p class="muted">The operators' token is in <code>operator.token</code> of the PKI directory (docs/console.md).</p>
        {{#error}}<p class="error">{{error}}</p>{{/error}}
        <form method="post" action="/console/login">
        <input type="hidden" name="next" value="{{next}}">
        <label>Operator token <input type="password" name="token" id="token" size="70" autofocus></label>
        <button id="sign-in">Sign in</button>
        </form>
        {{/body}}{{/layout}}
        """

    static let orders = """
        {{<layout}}{{$title}}orders{{/title}}{{$body}}
        <h1>Orders</h1>
        <form method="get" action="/console/orders">
        <label>State <select name="state"><option value="">any</option>{{#states}}<option{{#selected}} selected{{/selected}}>{{name}}</option>{{/states}}</select></label>
        <label>Customer <input name="customer" value="{{customer}}" size="14"></label>
        <label>Created since <input name="since" value="{{since}}" placeholder="2026-12-01" size="22"></label>
        <button>Filter</button>
        </form>
        {{#error}}<p class="error">{{error}}</p>{{/error}}
        <p class="muted">{{total}} orders · page {{page}} of {{pages}}</p>
        <table id="orders"><tr><th>Provider order</th><th>Customer</th><th>Customer order</th><th>State</th><th>Created</th><th>Updated</th></tr>
        {{#orders}}<tr><td><a href="/console/orders/{{id}}">{{id}}</a></td><td>{{customer}}</td><td>{{customerOrder}}</td>
        <td class="state">{{state}}{{#held}} <span class="held">held for approval</span>{{/held}}</td><td>{{created}}</td><td>{{updated}}</td></tr>{{/orders}}
        </table>
        <p>{{#previous}}<a href="{{previous}}">← newer</a>{{/previous}} {{#next}}<a href="{{next}}" id="older">older →</a>{{/next}}</p>
        {{/body}}{{/layout}}
        """

    static let order = """
        {{<layout}}{{$title}}{{id}}{{/title}}{{$body}}
        <h1>Order {{id}}</h1>
        {{#done}}<p class="done" id="done">{{done}}</p>{{/done}}
        <p>Customer <b>{{customer}}</b> ({{address}}), customer order <code>{{customerOrder}}</code>, created {{created}}.
        State <span class="state" id="state">{{state}}</span>.</p>
        {{#held}}
        <section id="decision"><h2>Held for approval</h2>
        <form class="inline" method="post" action="/console/orders/{{id}}/approve"><input type="hidden" name="csrf" value="{{csrf}}"><button id="approve">Approve and offer</button></form>
        <form class="inline" method="post" action="/console/orders/{{id}}/reject"><input type="hidden" name="csrf" value="{{csrf}}">
        <select name="code">{{#failCodes}}<option value="{{code}}"{{#selected}} selected{{/selected}}>{{code}} {{name}}</option>{{/failCodes}}</select>
        <input name="diagnostic" placeholder="diagnostic for the customer" size="30"><button id="reject">Reject</button></form>
        </section>
        {{/held}}
        {{> clauses}}
        <section><h2>Reservations</h2>
        <table id="reservations"><tr><th>Resource</th><th>Direction</th><th>Mbit/s</th><th>Kind</th></tr>
        {{#reservations}}<tr><td>{{resource}}</td><td>{{direction}}</td><td>{{mbps}}</td><td>{{kind}}</td></tr>{{/reservations}}
        {{^reservations}}<tr><td colspan="4" class="muted">none</td></tr>{{/reservations}}</table></section>
        {{#hasChildren}}<section><h2>Child orders</h2><ul>{{#children}}<li>{{id}} ({{customerOrder}})</li>{{/children}}</ul></section>{{/hasChildren}}
        <section><h2>Timeline</h2>
        {{> timeline}}
        </section>
        {{/body}}{{/layout}}
        """

    static let links = """
        {{<layout}}{{$title}}links{{/title}}{{$body}}
        <h1>Links</h1>
        <p class="muted">Offered and agreed capacity of every instance, against the configured capacity.</p>
        <table id="links"><tr><th>Link</th><th>Direction</th><th>Reserved</th><th></th><th>Capacity (Mbit/s)</th></tr>
        {{#links}}<tr><td>{{link}}</td><td>{{direction}}</td><td>{{reserved}} ({{percent}} %)</td>
        <td><div class="bar"><div class="{{#high}}high{{/high}}" style="width: {{width}}%"></div></div></td><td>{{capacity}}</td></tr>{{/links}}
        </table>
        {{/body}}{{/layout}}
        """

    static let live = """
        {{<layout}}{{$title}}live{{/title}}{{$body}}
        <h1>Live</h1>
        <p class="muted" id="status">connecting…</p>
        <table id="live"><tr><th>At</th><th>Provider order</th><th>Customer</th><th>From</th><th>To</th><th>Event</th></tr></table>
        <script>
        const table = document.getElementById("live"), status = document.getElementById("status");
        const source = new EventSource("/console/events");
        source.onopen = () => { status.textContent = "live: state changes appear as they are committed"; };
        source.onerror = () => { status.textContent = "disconnected; retrying…"; };
        source.addEventListener("transition", (message) => {
          const t = JSON.parse(message.data), row = table.insertRow(1);
          row.dataset.order = t["provider-order-id"];
          const link = document.createElement("a");
          link.href = "/console/orders/" + encodeURIComponent(t["provider-order-id"]);
          link.textContent = t["provider-order-id"];
          const cells = [t.at, null, t.customer, t.from, t.to, t.event];
          cells.forEach((text, i) => { const cell = row.insertCell(i); if (text === null) cell.appendChild(link); else cell.textContent = text; });
          while (table.rows.length > 201) table.deleteRow(table.rows.length - 1);
        });
        </script>
        {{/body}}{{/layout}}
        """

    static let missing = """
        {{<layout}}{{$title}}not found{{/title}}{{$body}}<h1>No such order</h1><p><a href="/console/orders">All orders</a></p>{{/body}}{{/layout}}
        """

    // MARK: - Customer portal

    static let portalOrders = """
        {{<layout}}{{$title}}my orders{{/title}}{{$body}}
        <h1>My orders</h1>
        <p><a href="/portal/catalog" id="new-quote">Request a quote from the catalogue</a></p>
        <table id="orders"><tr><th>Order</th><th>Provider order</th><th>State</th><th>Created</th><th>Updated</th></tr>
        {{#orders}}<tr><td><a href="/portal/orders/{{customerOrder}}">{{customerOrder}}</a>{{#portal}} <span class="muted">(portal)</span>{{/portal}}</td>
        <td>{{providerOrder}}</td><td class="state">{{state}}</td><td>{{created}}</td><td>{{updated}}</td></tr>{{/orders}}
        {{^orders}}<tr><td colspan="5" class="muted">no orders yet</td></tr>{{/orders}}
        </table>
        {{/body}}{{/layout}}
        """

    static let portalOrder = """
        {{<layout}}{{$title}}{{id}}{{/title}}{{$head}}{{#waiting}}<meta http-equiv="refresh" content="2">{{/waiting}}{{/head}}{{$body}}
        <h1>Order {{id}}</h1>
        {{#done}}<p class="done" id="done">{{done}}</p>{{/done}}
        {{#error}}<p class="error" id="error">{{error}}</p>{{/error}}
        <p>Provider order <code id="provider-order">{{providerOrder}}</code>. <span id="state">{{state}}</span>{{#waiting}} <span class="muted">(this page refreshes itself)</span>{{/waiting}}</p>
        {{#serverState}}<p class="muted">At the provider: <span class="state" id="server-state">{{serverState}}</span>{{#clientState}} · portal client: <span class="state" id="client-state">{{clientState}}</span>{{/clientState}}</p>{{/serverState}}
        {{#elsewhere}}<p class="muted">Your own CPNP client negotiates this order; answer it there.</p>{{/elsewhere}}
        {{#price}}<p>Price: <b id="price">{{price}}</b></p>{{/price}}
        {{#deciding}}
        <section id="decision"><h2>The offer</h2>
        <p>Valid until {{validUntil}}.</p>
        {{#concrete}}<form class="inline" method="post" action="/portal/orders/{{id}}/accept"><input type="hidden" name="csrf" value="{{csrf}}"><button id="accept">Accept the offer</button></form>{{/concrete}}
        {{^concrete}}<p class="muted">The offer leaves values open: it cannot be accepted as it is (RFC 8921 §8.7). Decline it and request a quote with fixed values.</p>{{/concrete}}
        <form class="inline" method="post" action="/portal/orders/{{id}}/decline"><input type="hidden" name="csrf" value="{{csrf}}">
        <select name="reason">{{#declineReasons}}<option value="{{code}}">{{name}}</option>{{/declineReasons}}</select>
        <button id="decline">Decline</button></form>
        </section>
        {{/deciding}}
        {{> clauses}}
        {{#hasTimeline}}<section><h2>Timeline at the provider</h2>
        {{> timeline}}
        </section>{{/hasTimeline}}
        {{/body}}{{/layout}}
        """

    static let portalCatalog = """
        {{<layout}}{{$title}}catalogue{{/title}}{{$body}}
        <h1>Service catalogue</h1>
        <table id="catalog"><tr><th>Service</th><th>Description</th><th>Values you choose</th></tr>
        {{#templates}}<tr><td><a href="/portal/catalog/{{id}}" id="template-{{id}}">{{name}}</a></td><td>{{description}}</td><td>{{open}}</td></tr>{{/templates}}
        {{^templates}}<tr><td colspan="3" class="muted">The provider publishes no service for you.</td></tr>{{/templates}}
        </table>
        {{/body}}{{/layout}}
        """

    static let portalTemplate = """
        {{<layout}}{{$title}}{{name}}{{/title}}{{$body}}
        <h1>{{name}}</h1>
        <p>{{description}}</p>
        {{#error}}<p class="error" id="error">{{error}}</p>{{/error}}
        <form method="post" action="/portal/catalog/{{id}}"><input type="hidden" name="csrf" value="{{csrf}}">
        {{#hasFields}}<p class="muted">Leave a value empty to let the provider choose within the range shown.</p>
        <table id="fields"><tr><th>Value</th><th>Allowed</th><th>Your choice</th></tr>
        {{#fields}}<tr><td><label for="{{name}}">{{label}}</label><br><code class="muted">{{path}}</code></td><td>{{constraint}}</td>
        <td>{{#isChoice}}<select name="{{name}}" id="{{name}}"><option value="">provider chooses</option>{{#choices}}<option{{#selected}} selected{{/selected}}>{{value}}</option>{{/choices}}</select>{{/isChoice}}
        {{^isChoice}}<input name="{{name}}" id="{{name}}" value="{{value}}" size="12">{{/isChoice}}</td></tr>{{/fields}}
        </table>{{/hasFields}}
        {{^hasFields}}<p class="muted">Every value of this service is fixed.</p>{{/hasFields}}
        <p><button id="request-quote">Request a quote</button></p>
        </form>
        <details><summary>The Connectivity Provisioning Document requested</summary><pre>{{cpd}}</pre></details>
        {{/body}}{{/layout}}
        """

    static let portalMissing = """
        {{<layout}}{{$title}}not found{{/title}}{{$body}}<h1>Not found</h1><p>You have no such order or service. <a href="/portal/orders">My orders</a></p>{{/body}}{{/layout}}
        """

    static let portalSignIn = """
        {{<layout}}{{$title}}sign in{{/title}}{{$body}}
        <h1>Customer portal</h1>
        <p>The portal signs you in with your CPNP client certificate, the one your CPNP client uses.</p>
        {{^https}}<p class="error">This server speaks plain HTTP: the portal needs HTTPS (<code>http.tls: true</code>), see docs/console.md.</p>{{/https}}
        {{#https}}<p>Your browser sent no certificate this provider knows. Import your certificate and key (for example <code>client-acme.p12</code>, made with
        <code>openssl pkcs12 -export -in client-acme.pem -inkey client-acme-key.pem -out client-acme.p12</code>) into your browser, then reload.</p>{{/https}}
        {{/body}}{{/layout}}
        """
}
